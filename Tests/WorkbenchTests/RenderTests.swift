import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Tensor
import XCTest
@testable import REPL
@testable import Workbench

final class RenderTests: XCTestCase {
    /// Parses XML and reports the first error, so malformed SVG fails the test with the parser's reason.
    private func parseXML(_ text: String) -> (ok: Bool, error: String, elements: [String]) {
        final class Collector: NSObject, XMLParserDelegate {
            var elements: [String] = []
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
                elements.append(name)
            }
        }
        let parser = XMLParser(data: Data(text.utf8))
        let collector = Collector()
        parser.delegate = collector
        let ok = parser.parse()
        return (ok, parser.parserError.map { "\($0)" } ?? "", collector.elements)
    }

    private let nasty = "a<b>&\"c\" 'd' </svg><script>alert(1)</script>"

    func testHTMLTableEscapesTextAndUsesOnlyInlineStyles() {
        let table = Table(title: nasty, columns: ["name", nasty], rows: [[.text(nasty), .number(1.5)],
                                                                       [.tokens([HighlightedToken(text: "<tok>", activation: 2, isFocus: true)], scale: 2), .null]])
        let html = HTMLRenderer.table(table)
        XCTAssertFalse(html.contains("<script>"))
        XCTAssertFalse(html.contains("<b>&"))
        XCTAssertTrue(html.contains("a&lt;b&gt;&amp;&quot;c&quot; &#39;d&#39; &lt;/svg&gt;&lt;script&gt;"))
        XCTAssertTrue(html.contains("&lt;tok&gt;"))
        XCTAssertFalse(html.contains("<style"))
        XCTAssertTrue(parseXML("<root>" + html + "</root>").ok, "the HTML table is well-formed: \(parseXML("<root>" + html + "</root>").error)")
    }

    /// Text columns (and their headers) left, number columns right, each cell saying so explicitly because
    /// JupyterLab's stylesheet right-aligns table cells.
    func testHTMLTableAlignsTextLeftAndNumbersRight() {
        let table = Table(columns: ["context", "activation"], rows: [
            [.tokens([HighlightedToken(text: " the", activation: 1)], scale: 1), .number(1.5)],
            [.text("word"), .null],
        ])
        let html = HTMLRenderer.table(table)
        XCTAssertTrue(html.contains("text-align:left;border-bottom:2px solid #888\">context</th>"), html)
        XCTAssertTrue(html.contains("text-align:right;border-bottom:2px solid #888\">activation</th>"), html)
        XCTAssertTrue(html.contains("text-align:left;white-space:pre\"><span"), html)
        XCTAssertTrue(html.contains("text-align:left\">word</td>"), html)
        XCTAssertTrue(html.contains("text-align:right\">1.5</td>"), html)
        XCTAssertFalse(html.contains("<td style=\"padding:2px 8px;border-bottom:1px solid #ddd\">"), "no cell without an alignment")
    }

    func testLongCellsAreCutOnlyBeyondTheTerminalWidth() {
        let long = String(repeating: "w", count: 120)
        let table = Table(columns: ["summary"], rows: [[.text(long)]])
        XCTAssertFalse(TextRenderer.table(table, cellLimit: 80).contains(long))
        XCTAssertTrue(TextRenderer.table(table, cellLimit: 200).contains(long))
        XCTAssertGreaterThanOrEqual(TextRenderer.cellLimit, 80)
    }

    /// A live bar wider than the terminal would wrap, and `\r` + erase-line redraws only its last row: it is cut.
    func testTheLiveBarNeverWrapsTheTerminal() {
        var written: [String] = []
        let bar = ProgressBar(isTTY: true, columns: { 60 }, write: { written.append($0) })
        let message = "loss 2.666–24.51, L0 7.3–8.5 (45.6–53.3% of features) over 3 layers, mean of the last 73 steps"
        bar.update(ProgressUpdate(task: "train", done: 36, total: 100, unit: "steps", message: message), id: "a")
        let line = try! XCTUnwrap(written.last).replacingOccurrences(of: "\r\u{1B}[2K", with: "")
        XCTAssertEqual(line.count, 59, line)
        XCTAssertTrue(line.hasPrefix("train ") && line.hasSuffix("…"), line)
        var plain: [String] = []
        ProgressBar(isTTY: false, columns: { 60 }, write: { plain.append($0) })
            .update(ProgressUpdate(task: "train", done: 36, total: 100, unit: "steps", message: message), id: "a")
        XCTAssertTrue(plain.last!.contains("mean of the last 73 steps"), "a log (not a terminal) keeps the whole line")
    }

    func testProgressRatesHaveTwoSignificantDigits() {
        let line = ProgressBar.line(ProgressUpdate(task: "train", done: 36, total: 100, unit: "steps", message: ""), elapsed: 10.01)
        XCTAssertTrue(line.contains("  3.6 steps/s  "), line)
        XCTAssertEqual(ProgressBar.formatRate(3.62154), "3.6")
        XCTAssertEqual(ProgressBar.formatRate(36.2154), "36")
        XCTAssertEqual(ProgressBar.formatRate(1234.4), "1234")
        XCTAssertEqual(ProgressBar.formatRate(0.0523), "0.052")
    }

    func testLogitLensTokensShowSpaces() {
        XCTAssertEqual(Engines.visibleToken(" "), "␣")
        XCTAssertEqual(Engines.visibleToken(" the\n"), "␣the⏎")
        XCTAssertEqual(Engines.visibleToken("é"), "é")
    }

    func testHighlightStrengthFollowsActivation() {
        let html = HTMLRenderer.highlighted([HighlightedToken(text: "a", activation: 0), HighlightedToken(text: "b", activation: 1),
                                             HighlightedToken(text: "c", activation: 2, isFocus: true)], scale: 2)
        XCTAssertTrue(html.contains("rgba(255,140,0,0.000)"), html)
        XCTAssertTrue(html.contains("rgba(255,140,0,0.425)"), html)
        XCTAssertTrue(html.contains("rgba(255,140,0,0.850);border-bottom"), html)
    }

    private func figures() -> [Figure] {
        [
            Figure.histogram(title: nasty, xLabel: "x <&>", samples: [("layer 0", [1, 2, 2, 3, 3, 3]), ("layer \"1\"", [2, 4, 4, 8])], bins: 5),
            Figure(title: "loss", xLabel: "step", yLabel: "loss", logY: true,
                   kind: .line(series: [LineSeries(label: "a", x: [0, 10, 20], y: [10, 1, 0.1]), LineSeries(label: "b", x: [5], y: [3])])),
            Figure(title: "fit", xLabel: "norm", yLabel: "L0",
                   kind: .scatter(points: [ScatterPoint(x: 1, y: 2, label: "<l0>"), ScatterPoint(x: 2, y: 4), ScatterPoint(x: 3, y: 6.5)],
                                  fit: LineFit.leastSquares([1, 2, 3], [2, 4, 6.5]))),
            Figure(title: "empty", xLabel: "x", yLabel: "y", kind: .line(series: [])),
            Figure(title: "nan", xLabel: "x", yLabel: "y", kind: .scatter(points: [ScatterPoint(x: .nan, y: .infinity)], fit: nil)),
        ]
    }

    func testSVGFiguresAreWellFormedPlotsWithAxesTicksLabelsAndLegends() {
        for figure in figures() {
            let svg = SVGRenderer.figure(figure)
            let parsed = parseXML(svg)
            XCTAssertTrue(parsed.ok, "\(figure.title): \(parsed.error)")
            XCTAssertEqual(parsed.elements.first, "svg")
            XCTAssertFalse(svg.contains("<script"))
            XCTAssertTrue(svg.contains(HTMLRenderer.escape(figure.xLabel)), "x label")
        }
        let histogram = SVGRenderer.figure(figures()[0])
        XCTAssertEqual(parseXML(histogram).elements.filter { $0 == "rect" }.count >= 9, true, "bars, legend swatches")
        let line = SVGRenderer.figure(figures()[1])
        XCTAssertTrue(line.contains("<polyline"))
        XCTAssertTrue(line.contains("(log scale)"))
        let scatter = SVGRenderer.figure(figures()[2])
        XCTAssertEqual(parseXML(scatter).elements.filter { $0 == "circle" }.count, 3)
        XCTAssertTrue(scatter.contains("stroke-dasharray"), "the fitted line")
        XCTAssertTrue(scatter.contains("fit: y = "), "legend names the fit")
    }

    /// Circles (cx, cy, r), polyline vertices and bars drawn in the plot, and the legend's box, read back from the SVG.
    private func geometry(_ svg: String) -> (marks: [(Double, Double, Double, Double)], legend: (Double, Double, Double, Double)?, width: Double) {
        final class Collector: NSObject, XMLParserDelegate {
            var marks: [(Double, Double, Double, Double)] = []
            var legend: (Double, Double, Double, Double)?
            var width = 0.0
            var inLegend = false, inPlot = false
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes a: [String: String] = [:]) {
                func d(_ key: String) -> Double { Double(a[key] ?? "") ?? .nan }
                if name == "svg" { width = d("width") }
                if name == "g" && a["class"] == "legend" { inLegend = true }
                if name == "g" && a["clip-path"] != nil { inPlot = true }
                if inLegend, name == "rect", legend == nil { legend = (d("x"), d("y"), d("width"), d("height")) }
                guard inPlot else { return }
                if name == "circle" { marks.append((d("cx") - d("r"), d("cy") - d("r"), 2 * d("r"), 2 * d("r"))) }
                if name == "rect" { marks.append((d("x"), d("y"), d("width"), d("height"))) }
                if name == "polyline" {
                    for pair in (a["points"] ?? "").split(separator: " ") {
                        let xy = pair.split(separator: ",").compactMap { Double(String($0)) }
                        if xy.count == 2 { marks.append((xy[0], xy[1], 0, 0)) }
                    }
                }
            }
            func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
                if name == "g" { inLegend = false; inPlot = false }
            }
        }
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = Collector()
        parser.delegate = collector
        XCTAssertTrue(parser.parse())
        return (collector.marks, collector.legend, collector.width)
    }

    /// The legend covers no data: scatter points in each corner in turn (and in all four), curves and histograms.
    func testLegendCoversNoDataPoint() throws {
        let corners: [(Double, Double)] = [(10, 10), (0, 10), (10, 0), (0, 0)]
        var layouts: [[ScatterPoint]] = corners.map { corner in
            [ScatterPoint(x: corner.0, y: corner.1), ScatterPoint(x: 5, y: 5), ScatterPoint(x: 3, y: 7), ScatterPoint(x: 10 - corner.0, y: 10 - corner.1)]
        }
        layouts.append(stride(from: 0.0, through: 10, by: 1).flatMap { x in stride(from: 0.0, through: 10, by: 1).map { ScatterPoint(x: x, y: $0) } })
        // The study's case: layer 0 (smallest norm) has the largest L0, at the top left; the fit runs down to the right.
        layouts.append(zip([2.3, 9.2, 36.8, 147], [61, 30, 12, 3]).map { ScatterPoint(x: $0, y: $1) })
        var figures = layouts.map { points in
            Figure(title: "fit", xLabel: "x", yLabel: "y", kind: .scatter(points: points, fit: LineFit.leastSquares(points.map(\.x), points.map(\.y))))
        }
        figures.append(Figure(title: "curves", xLabel: "step", yLabel: "loss", logY: true, kind: .line(series: (0..<4).map { layer in
            LineSeries(label: "layer \(layer)", x: Array(stride(from: 0.0, through: 100, by: 5)), y: stride(from: 0.0, through: 100, by: 5).map { 10 * pow(4, Double(layer)) * exp(-$0 / 30) })
        })))
        figures.append(Figure.histogram(title: "h", xLabel: "x", samples: [("a", (0..<200).map { Double($0 % 17) })], bins: 17))
        var outside = 0
        for (index, figure) in figures.enumerated() {
            let (marks, legendBox, canvasWidth) = geometry(SVGRenderer.figure(figure))
            let legend = try XCTUnwrap(legendBox, "figure \(index) has a legend")
            XCTAssertFalse(marks.isEmpty)
            for mark in marks {
                let overlaps = mark.0 < legend.0 + legend.2 && legend.0 < mark.0 + mark.2 + 0.001 && mark.1 < legend.1 + legend.3 && legend.1 < mark.1 + mark.3 + 0.001
                XCTAssertFalse(overlaps, "figure \(index): the legend \(legend) covers the mark \(mark)")
            }
            XCTAssertLessThanOrEqual(legend.0 + legend.2, canvasWidth, "figure \(index): the legend is inside the canvas")
            if legend.0 > SVGRenderer.width - SVGRenderer.right { outside += 1 }
        }
        XCTAssertGreaterThanOrEqual(outside, 1, "points everywhere push the legend outside the plot")
        XCTAssertLessThan(outside, figures.count, "most legends fit in an empty corner")
    }

    func testFitLegendIsWholeAndShowsP() {
        let label = SVGRenderer.fitLabel(LineFit(slope: 1.96019, intercept: -0.11965, r: 0.98123, p: 0.0188))
        XCTAssertEqual(label, "fit: y = 1.96x − 0.12, r = 0.981, p = 0.0188")
        let svg = SVGRenderer.figure(Figure(title: "fit", xLabel: "x", yLabel: "y", kind: .scatter(
            points: [ScatterPoint(x: 1, y: 2), ScatterPoint(x: 2, y: 4)], fit: LineFit(slope: 2, intercept: 0, r: 1, p: 1e-5))))
        XCTAssertTrue(svg.contains(">fit: y = 2x + 0, r = 1, p = 1e-5</text>"), svg)
    }

    func testLogAxisTicksReadAsValues() {
        let axis = Axis(logValues: [log10(1.2), log10(700)], from: 0, to: 100)
        XCTAssertEqual(axis.ticks.map(SVGRenderer.logTickLabel), ["1", "3", "10", "30", "100", "300", "1000"])
        let wide = Axis(logValues: [-3, 4.2], from: 0, to: 100)
        XCTAssertEqual(wide.ticks.map(SVGRenderer.logTickLabel), ["0.001", "0.01", "0.1", "1", "10", "100", "1000", "10000", "1e5"])
        let narrow = Axis(logValues: [log10(1.5), log10(8)], from: 0, to: 100)
        XCTAssertEqual(narrow.ticks.map(SVGRenderer.logTickLabel), ["1", "2", "5", "10"])
        let svg = SVGRenderer.figure(Figure(title: "loss", xLabel: "step", yLabel: "loss", logY: true,
                                            kind: .line(series: [LineSeries(label: "a", x: [0, 1, 2], y: [3, 30, 300])])))
        XCTAssertFalse(svg.contains(">1e0.5<"), "no fractional exponents")
        XCTAssertTrue(svg.contains(">30</text>"), svg)
    }

    func testAxisTicksAreNiceAndCoverTheData() {
        let axis = Axis(values: [0.13, 9.7], from: 0, to: 100)
        XCTAssertEqual(axis.ticks, [0, 2, 4, 6, 8, 10])
        XCTAssertLessThanOrEqual(axis.lo, 0.13)
        XCTAssertGreaterThanOrEqual(axis.hi, 9.7)
        XCTAssertEqual(Axis.niceStep(0.3), 0.5)
        XCTAssertEqual(Axis.niceStep(1400), 2000)
    }

    func testFigureBundleCarriesSVGAndAnImgFallback() throws {
        let bundle = Rendering.bundle(.figure(figures()[0]))
        let svg = try XCTUnwrap(bundle.data["image/svg+xml"])
        let html = try XCTUnwrap(bundle.data["text/html"])
        XCTAssertTrue(html.hasPrefix("<img src=\"data:image/svg+xml;base64,"))
        let base64 = html.dropFirst("<img src=\"data:image/svg+xml;base64,".count).prefix { $0 != "\"" }
        XCTAssertEqual(String(decoding: try XCTUnwrap(Data(base64Encoded: String(base64))), as: UTF8.self), svg)
        XCTAssertFalse(bundle.plain.isEmpty)
        XCTAssertNotNil(bundle.data["application/json"])
    }

    func testTextTableAlignsColumns() {
        let text = TextRenderer.table(Table(columns: ["layer", "name"], rows: [[.number(1), .text("a")], [.number(10.5), .text("bbb")]]))
        XCTAssertEqual(text, "layer  name\n─────  ────\n    1  a\n 10.5  bbb")
    }

    func testTextFiguresUseBlocksAndSparklines() {
        let histogram = TextRenderer.figure(figures()[0])
        XCTAssertTrue(histogram.contains("█"))
        XCTAssertTrue(histogram.contains("n=6") && histogram.contains("n=4"), histogram)
        XCTAssertEqual(TextRenderer.sparkline([0, 1, 2, 3, 4, 5, 6, 7]), "▁▂▃▄▅▆▇█")
        let scatter = TextRenderer.figure(figures()[2])
        XCTAssertTrue(scatter.contains("●") && scatter.contains("fit: L0 = "), scatter)
    }

    func testLeastSquaresFitRecoversAKnownLine() throws {
        let xs = [1.0, 2, 3, 4, 5]
        let fit = try XCTUnwrap(LineFit.leastSquares(xs, xs.map { 3 * $0 - 2 }))
        XCTAssertEqual(fit.slope, 3, accuracy: 1e-12)
        XCTAssertEqual(fit.intercept, -2, accuracy: 1e-12)
        XCTAssertEqual(fit.r, 1, accuracy: 1e-12)
    }

    func testTableNumbersAndCSV() {
        XCTAssertEqual(formatTableNumber(3), "3")
        XCTAssertEqual(formatTableNumber(0.123456789), "0.123457")
        XCTAssertEqual(formatTableNumber(1234.5678), "1234.57")
        XCTAssertEqual(formatTableNumber(-0.00001234), "-1.234e-5")
        XCTAssertEqual(formatTableNumber(2.5e-9), "2.5e-9")
        let csv = Saving.csv(Table(columns: ["a", "b,c"], rows: [[.text("x\"y"), .number(0.1)], [.null, .bool(true)]]))
        XCTAssertEqual(csv, "a,\"b,c\"\n\"x\"\"y\",0.1\n,true\n")
    }

    func testJSONEscapesAndKeepsNumbersNumeric() throws {
        let json = Rendering.json(.table(Table(columns: ["a"], rows: [[.number(2000)], [.number(.nan)], [.text("q\"\n\u{1}")]]))).serialized
        XCTAssertEqual(json, #"{"columns": ["a"], "rows": [[2000], [null], ["q\"\n\u0001"]]}"#)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(json.utf8)))
    }

    func testSavingTablesAndFigures() throws {
        let dir = Fixtures.temporaryDirectory("save")
        defer { try? FileManager.default.removeItem(at: dir) }
        let session = Session()
        session.mustRun("t = vars\nsave t \"\(dir.path)/vars.csv\"\nsave t \"\(dir.path)/vars.json\"")
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("vars.csv"), encoding: .utf8), "name,type,summary\n")
        XCTAssertTrue(session.mustFail("save t \"\(dir.path)/vars.txt\"").message.contains(".csv or .json"))
        XCTAssertTrue(session.mustFail("x = 1\nsave x \"\(dir.path)/x.csv\"").message.contains("a number cannot be saved"))
        XCTAssertTrue(session.mustFail("save t \"\(dir.path)/vars.svg\"").message.contains("came with no figure"))
    }

    /// A command that showed a figure returns a table that keeps it, so `save RESULT "PATH.svg"` / ".png" writes it.
    func testTheFigureACommandShowedIsSavedFromItsResult() throws {
        let dir = Fixtures.temporaryDirectory("savefig")
        defer { try? FileManager.default.removeItem(at: dir) }
        let session = Session()
        let sink = RecordingSink()
        session.mustRun("toy = synth d=8 features=16 active=2 norms=[1,4] tokens=500 out=\"\(dir.path)/toy\"\ns = stats toy", sink: sink)
        let shown = try XCTUnwrap(sink.displays.compactMap { $0.data["image/svg+xml"] }.last)
        session.mustRun("save s \"\(dir.path)/norms.svg\"")
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("norms.svg"), encoding: .utf8), shown + "\n",
                       "the saved figure is the one `stats` showed")
        XCTAssertTrue(shown.contains("toy: activation norms"), "the figure names what it is about")
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        guard path.split(separator: ":").contains(where: { FileManager.default.isExecutableFile(atPath: "\($0)/rsvg-convert") }) else {
            print("skipping the .png half: rsvg-convert (Debian librsvg2-bin, installed by scripts/setup) is not on PATH")
            return
        }
        session.mustRun("save s \"\(dir.path)/norms.png\"")
        let png = try Data(contentsOf: dir.appendingPathComponent("norms.png"))
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "a PNG file")
        // IHDR width and height: twice the SVG's 640×400.
        let be = { (o: Int) in png[o..<o + 4].reduce(0) { $0 << 8 | Int($1) } }
        XCTAssertEqual(be(16), 1280)
        XCTAssertEqual(be(20), 800)
    }
}
