import Foundation
import Tensor

// A live progress bar on stderr: bar, percentage, counts, rate and ETA, redrawn in place at most ~10 times a
// second. When stderr is not a terminal it writes a plain line every few seconds instead of redrawing.

final class ProgressBar {
    private struct Track {
        var started: Date
        var lastDraw: Date
        var lastUpdate: ProgressUpdate
    }

    private var tracks: [String: Track] = [:]
    private let isTTY: Bool
    private let write: (String) -> Void
    /// The terminal's width: a live line must not wrap, since `\r` and erase-line redraw only the last row.
    private let columns: () -> Int

    init(isTTY: Bool = isatty(2) != 0, columns: @escaping () -> Int = ProgressBar.stderrColumns,
         write: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.isTTY = isTTY
        self.columns = columns
        self.write = write
    }

    /// The width of the terminal on stderr, else $COLUMNS, else 80.
    static func stderrColumns() -> Int {
        var size = winsize()
        if ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return ProcessInfo.processInfo.environment["COLUMNS"].flatMap { Int($0) } ?? 80
    }

    /// A live line cut to one character less than the terminal's width (so the cursor never wraps), with `…`.
    func fitted(_ line: String) -> String {
        let width = max(20, columns() - 1)
        return line.count <= width ? line : String(line.prefix(width - 1)) + "…"
    }

    func update(_ update: ProgressUpdate, id: String, now: Date = Date()) {
        var track = tracks[id] ?? Track(started: now, lastDraw: .distantPast, lastUpdate: update)
        track.lastUpdate = update
        let interval = isTTY ? 0.1 : 5
        let finished = update.total > 0 && update.done >= update.total
        if now.timeIntervalSince(track.lastDraw) >= interval || finished && isTTY {
            track.lastDraw = now
            let line = ProgressBar.line(update, elapsed: now.timeIntervalSince(track.started))
            write(isTTY ? "\r\u{1B}[2K" + fitted(line) : line + "\n")
        }
        tracks[id] = track
    }

    /// Clears a live bar before other output takes the line; it is redrawn on its next update.
    func clearForOutput() {
        guard isTTY, !tracks.isEmpty else { return }
        write("\r\u{1B}[2K")
        for id in tracks.keys { tracks[id]!.lastDraw = .distantPast }
    }

    func done(id: String, now: Date = Date()) {
        guard let track = tracks.removeValue(forKey: id) else { return }
        let line = ProgressBar.line(track.lastUpdate, elapsed: now.timeIntervalSince(track.started))
        write(isTTY ? "\r\u{1B}[2K" + line + "\n" : line + "\n")
    }

    /// `task ███████░░░░░  58%  5800/10000 steps  1234 steps/s  ETA 0:03  message`
    static func line(_ update: ProgressUpdate, elapsed: TimeInterval, width: Int = 24) -> String {
        var parts = [update.task]
        if update.total > 0 {
            let filled = Int(update.fraction * Double(width))
            parts.append(String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled))
            parts.append(String(Int(update.fraction * 100)).leftPadding(3) + "%")
            parts.append("\(update.done)/\(update.total) \(update.unit)")
        } else {
            parts.append("\(update.done) \(update.unit)")
        }
        if elapsed > 0, update.done > 0 {
            let rate = Double(update.done) / elapsed
            parts.append(formatRate(rate) + " \(update.unit)/s")
            if update.total > update.done {
                parts.append("ETA " + duration(Double(update.total - update.done) / rate))
            } else {
                parts.append("in " + duration(elapsed))
            }
        }
        if !update.message.isEmpty { parts.append(update.message) }
        return parts.joined(separator: "  ")
    }

    /// Two significant digits, whole numbers from 10 up: `3.6`, `36`, `1234`, `0.052`.
    static func formatRate(_ rate: Double) -> String {
        guard rate.isFinite, rate > 0 else { return "0" }
        if rate >= 10 { return String(Int(rate.rounded())) }
        let decimals = max(1, 1 - Int(log10(rate).rounded(.down)))
        return String(format: "%.\(decimals)f", rate)
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let total = Int(seconds.rounded())
        let (h, m, s) = (total / 3600, total / 60 % 60, total % 60)
        let ss = s < 10 ? "0\(s)" : "\(s)"
        if h > 0 { return "\(h):\(m < 10 ? "0\(m)" : "\(m)"):\(ss)" }
        return "\(m):\(ss)"
    }
}
