import Foundation

// HTML for Jupyter. Only inline styles: JupyterLab's sanitizer drops <style> and <script> in untrusted notebooks.

enum HTMLRenderer {
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func table(_ table: Table, maxRows: Int = 500) -> String {
        let cellStyle = "padding:2px 8px;border-bottom:1px solid #ddd"
        var html = "<table style=\"border-collapse:collapse;font-family:monospace;font-size:12px\">"
        if let title = table.title {
            html += "<caption style=\"text-align:left;font-weight:bold;padding:4px 0\">\(escape(title))</caption>"
        }
        // Every cell states its alignment (JupyterLab right-aligns table cells by default): numbers right, so
        // digits line up, text left; a header aligns with its column (right when the column holds only numbers).
        let numeric = table.columns.indices.map { index in
            table.rows.allSatisfy { row in
                guard index < row.count else { return true }
                switch row[index] { case .number, .null: return true; default: return false }
            } && table.rows.contains { index < $0.count && $0[index] != .null }
        }
        html += "<thead><tr>"
        for (index, column) in table.columns.enumerated() {
            let align = numeric[index] ? "right" : "left"
            html += "<th style=\"\(cellStyle);text-align:\(align);border-bottom:2px solid #888\">\(escape(column))</th>"
        }
        html += "</tr></thead><tbody>"
        for row in table.rows.prefix(maxRows) {
            html += "<tr>"
            for cell in row {
                switch cell {
                case .number:
                    html += "<td style=\"\(cellStyle);text-align:right\">\(escape(cell.plain))</td>"
                case .tokens(let tokens, let scale):
                    html += "<td style=\"\(cellStyle);text-align:left;white-space:pre\">\(highlighted(tokens, scale: scale))</td>"
                default:
                    html += "<td style=\"\(cellStyle);text-align:left\">\(escape(cell.plain))</td>"
                }
            }
            html += "</tr>"
        }
        html += "</tbody></table>"
        if table.rows.count > maxRows {
            html += "<div style=\"font-family:monospace;font-size:12px\">… \(table.rows.count - maxRows) more rows</div>"
        }
        return html
    }

    /// Tokens with a background whose strength follows the activation (orange, as in sae_vis), the focus token
    /// underlined, and the activation in the title so hovering shows it.
    static func highlighted(_ tokens: [HighlightedToken], scale: Double) -> String {
        tokens.map { token in
            let strength = scale > 0 ? min(1, max(0, token.activation / scale)) : 0
            var style = "background-color:rgba(255,140,0,\(fixed(strength * 0.85, decimals: 3)))"
            if token.isFocus { style += ";border-bottom:2px solid #000;font-weight:bold" }
            let text = token.text.replacingOccurrences(of: "\n", with: "⏎")
            return "<span style=\"\(style)\" title=\"\(escape(formatTableNumber(token.activation)))\">\(escape(text))</span>"
        }.joined()
    }

    /// The <img> fallback JupyterLab renders in untrusted notebooks (commands.md "Output").
    static func svgImage(_ svg: String, alt: String) -> String {
        "<img src=\"data:image/svg+xml;base64,\(Data(svg.utf8).base64EncodedString())\" alt=\"\(escape(alt))\"/>"
    }
}
