import CReadline
#if canImport(Glibc)
import Glibc
#endif
import Tensor
import Workbench

// The one place that touches GNU readline's global state. Swift 6 rejects references to C global variables
// (`rl_point`, …) as unsafe shared state, so this file reaches them through their addresses (dlsym), and keeps
// the REPL's own callback state in one `nonisolated(unsafe)` variable: readline is single-threaded, and its C
// callbacks (line handler, completion) run on the main thread inside rl_callback_read_char, as does the REPL.

enum Readline {
    private struct State {
        /// The line readline finished, set by the line handler: .some(nil) is end of input (Ctrl-D).
        var finishedLine: String??
        /// Lines already entered for the current statement (continuations), so completion sees the whole statement.
        var precedingText = ""
        var completer: ((String, Int) -> Completion)?
        var historyPath: String?
        /// Set by Ctrl-C; a key read waiting on the terminal gives up when it is set.
        var interrupt: CancellationFlag?
        /// The terminal opened a second time, non-blocking (a file description of its own, so the shell's stays
        /// blocking): Ctrl-C flushes typed-ahead input, and a blocking read of input that vanished would never return.
        var input: Int32 = -1
    }
    nonisolated(unsafe) private static var state = State()

    static var precedingText: String {
        get { state.precedingText }
        set { state.precedingText = newValue }
    }
    static var completer: ((String, Int) -> Completion)? {
        get { state.completer }
        set { state.completer = newValue }
    }

    /// readline's `rl_getc_func_t *` as a C function pointer.
    typealias GetcFunction = @convention(c) (UnsafeMutablePointer<FILE>?) -> Int32

    /// readline's `rl_completion_func_t *` as a C function pointer (the imported typedef is not @convention(c)).
    typealias CompletionFunction = @convention(c) (UnsafePointer<CChar>?, Int32, Int32) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?

    /// The address of one of readline's global variables.
    private static func global<T>(_ name: String, _ type: T.Type) -> UnsafeMutablePointer<T> {
        guard let address = dlsym(nil, name) else { fatalError("readline's `\(name)` is missing from libreadline") }
        return address.assumingMemoryBound(to: T.self)
    }

    static func configure(historyPath: String?, interrupt: CancellationFlag) {
        global("rl_catch_signals", Int32.self).pointee = 0  // our SIGINT handler stays; the loop reacts to Ctrl-C
        state.interrupt = interrupt
        state.input = open("/proc/self/fd/0", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        if state.input >= 0 {
            global("rl_getc_function", GetcFunction?.self).pointee = { _ in Readline.readKey() }
        }
        global("rl_readline_name", UnsafePointer<CChar>?.self).pointee = UnsafePointer(strdup("nsae"))
        // Break words at these so `key=val`, list items and paths inside strings complete separately.
        global("rl_completer_word_break_characters", UnsafePointer<CChar>?.self).pointee = UnsafePointer(strdup(" \t\n\"=[],"))
        global("rl_attempted_completion_function", CompletionFunction?.self).pointee = { _, start, end in
            Readline.completions(start: Int(start), end: Int(end))
        }
        using_history()
        stifle_history(2000)
        state.historyPath = historyPath
        if let historyPath { _ = read_history(historyPath) }
    }

    static func install(prompt: String) {
        state.finishedLine = nil
        rl_callback_handler_install(prompt) { line in
            // Removing the handler here stops readline from redrawing the prompt before the command's output.
            rl_callback_handler_remove()
            let text = line.map { String(cString: $0) }
            free(line)
            Readline.state.finishedLine = .some(text)
        }
    }

    /// Restores the terminal while a command runs.
    static func remove() { rl_callback_handler_remove() }

    static func readCharacter() { rl_callback_read_char() }

    /// One byte of input for readline, never blocking past a Ctrl-C: waits in 100 ms polls, and when Ctrl-C came
    /// (its flush may have taken the bytes poll saw) returns NUL, bound to set-mark, which edits nothing; the loop
    /// then clears the line.
    private static func readKey() -> Int32 {
        while true {
            if state.interrupt?.isCancelled == true { return 0 }
            var byte: UInt8 = 0
            let count = read(state.input, &byte, 1)
            if count == 1 { return Int32(byte) }
            if count == 0 { return EOF }
            guard errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR else { return EOF }
            var descriptor = pollfd(fd: state.input, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 100)
        }
    }

    /// The line entered since the last call, if any (nil inside means end of input).
    static func takeLine() -> String?? {
        defer { state.finishedLine = nil }
        return state.finishedLine
    }

    /// Ctrl-C at the prompt: drop what was typed, start a fresh line.
    static func cancelLine() {
        rl_free_line_state()
        rl_callback_sigcleanup()
        rl_replace_line("", 0)
        rl_crlf()
        rl_callback_handler_remove()
    }

    static func addHistory(_ entry: String) {
        add_history(entry)
        if let historyPath = state.historyPath { _ = write_history(historyPath) }
    }

    /// readline's completion hook: asks the shared completer about the whole statement and maps the answer to
    /// readline's word, which starts at byte offset `start` of the current line.
    private static func completions(start: Int, end: Int) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        global("rl_attempted_completion_over", Int32.self).pointee = 1  // no fallback to readline's filename completion
        guard let completer = state.completer, let buffer = global("rl_line_buffer", UnsafeMutablePointer<CChar>?.self).pointee else { return nil }
        let line = String(cString: buffer)
        let cursor = CompletionGlue.statementCursor(precedingText: precedingText, line: line,
                                                    pointByte: Int(global("rl_point", Int32.self).pointee))
        let (matches, suppressAppend) = CompletionGlue.readlineMatches(completer(precedingText + line, cursor),
                                                                       precedingText: precedingText, line: line,
                                                                       wordStartByte: start)
        guard !matches.isEmpty else { return nil }
        global("rl_completion_suppress_append", Int32.self).pointee = suppressAppend ? 1 : 0
        // readline's format: [common prefix, match…, NULL], all malloc'd; readline frees them.
        let array = malloc(MemoryLayout<UnsafeMutablePointer<CChar>?>.stride * (matches.count + 2))!
            .bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: matches.count + 2)
        array[0] = strdup(CompletionGlue.commonPrefix(matches))
        for (i, match) in matches.enumerated() { array[i + 1] = strdup(match) }
        array[matches.count + 1] = nil
        if matches.count == 1 {
            free(array[1])
            array[1] = nil
        }
        return array
    }

    /// The entries of readline's history list, oldest first.
    static func historyEntries() -> [String] {
        guard let list = history_list() else { return [] }
        var entries: [String] = []
        var i = 0
        while let entry = list[i] {
            entries.append(String(cString: entry.pointee.line))
            i += 1
        }
        return entries
    }

    static func clearHistory() { clear_history() }
}
