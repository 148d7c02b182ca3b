import Tensor
import Workbench

/// A live progress bar as a mime bundle: text/plain for consoles, text/html (inline styles only, which survive
/// the notebook sanitizer) for notebooks.
enum ProgressDisplay {
    /// The first display of a bar. Its text/plain is what a client that ignores update_display_data (jupyter
    /// console prints display_data's text/plain once, and never an update) keeps on screen, so it says what
    /// started rather than a state that goes stale ("0% 1/400 steps"); the html is the live bar, and the
    /// updates carry the bar in both forms (a saved notebook keeps the final one).
    static func opening(_ update: ProgressUpdate) -> MimeBundle {
        var bundle = bundle(update)
        let size = update.total > 0 ? " (\(update.total) \(update.unit))" : ""
        bundle.data["text/plain"] = "\(update.task): started\(size)"
        return bundle
    }

    static func bundle(_ update: ProgressUpdate, finished: Bool = false) -> MimeBundle {
        let percent = Int((update.fraction * 100).rounded(.down))
        let width = 30
        let filled = Int((update.fraction * Double(width)).rounded(.down))
        let counts = update.total > 0 ? "\(update.done)/\(update.total) \(update.unit)" : "\(update.done) \(update.unit)"
        let suffix = update.message.isEmpty ? "" : "  \(update.message)"
        let state = finished && update.total > 0 && update.done < update.total ? "  (stopped)" : ""
        let plain = "\(update.task) [\(String(repeating: "#", count: filled))\(String(repeating: "-", count: width - filled))] "
            + "\(percent)% \(counts)\(suffix)\(state)"
        let html = "<div style=\"font-family:monospace;white-space:pre\">"
            + "\(escape(update.task)) "
            + "<span style=\"display:inline-block;width:20em;height:0.9em;border:1px solid #888;vertical-align:middle\">"
            + "<span style=\"display:block;width:\(percent)%;height:100%;background:#4a90d9\"></span></span> "
            + "\(percent)% \(escape(counts))\(escape(suffix))\(escape(state))</div>"
        return MimeBundle(["text/plain": plain, "text/html": html])
    }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for ch in text {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(ch)
            }
        }
        return out
    }
}
