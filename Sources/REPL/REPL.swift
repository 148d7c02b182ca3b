import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Tensor
import Workbench

// The interactive loop: readline's callback interface inside a poll loop, so Ctrl-C at the prompt clears the line
// and Ctrl-C during a command sets the cancellation flag that the engines check, leaving the session intact.

public final class InteractiveLoop {
    private let session: Session
    private let sink = TerminalSink()
    private let flag: CancellationFlag

    public init(session: Session, cancellation: CancellationFlag = terminalInterruptFlag) {
        self.session = session
        self.flag = cancellation
    }

    /// Where history persists: $NSAE_HISTORY, else ~/.nsae_history.
    public static var historyPath: String {
        if let path = ProcessInfo.processInfo.environment["NSAE_HISTORY"], !path.isEmpty { return path }
        return (NSHomeDirectory() as NSString).appendingPathComponent(".nsae_history")
    }

    /// Runs until end of input (Ctrl-D); returns the exit status. Must be called on the main thread.
    public func run() -> Int32 {
        if isatty(0) == 0 { return runPlain() }
        return runInteractive()
    }

    private func runInteractive() -> Int32 {
        print(session.banner)
        Readline.configure(historyPath: InteractiveLoop.historyPath, interrupt: flag)
        Readline.completer = { [session] code, cursor in session.complete(code, cursor: cursor) }
        var statement = StatementBuffer(isComplete: session.isComplete)
        Readline.precedingText = ""
        Readline.install(prompt: "nsae> ")
        while true {
            // A Ctrl-C that lands while the loop is not blocked in poll (reading a key, redrawing) sets the flag
            // without interrupting the next poll, so poll wakes up every 100 ms to look at the flag.
            var descriptor = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 100)
            if flag.isCancelled {
                flag.reset()
                Readline.cancelLine()
                statement.clear()
                Readline.precedingText = ""
                Readline.install(prompt: "nsae> ")
                continue
            }
            if ready < 0 {
                guard errno == EINTR else { break }
                continue
            }
            if ready == 0 { continue }
            Readline.readCharacter()
            guard let entered = Readline.takeLine() else { continue }
            guard let line = entered else {
                Readline.remove()
                print("")
                return 0
            }
            guard let complete = statement.add(line) else {
                Readline.precedingText = statement.precedingText
                Readline.install(prompt: "  ...> ")
                continue
            }
            Readline.remove()
            if !complete.trimmingCharacters(in: .whitespaces).isEmpty {
                Readline.addHistory(complete)
                execute(complete)
            }
            Readline.precedingText = ""
            Readline.install(prompt: "nsae> ")
        }
        Readline.remove()
        return 0
    }

    /// Input from a pipe: no prompts or line editing, but the same execution and output.
    private func runPlain() -> Int32 {
        var statement = StatementBuffer(isComplete: session.isComplete)
        while let line = readLine() {
            if let complete = statement.add(line) { execute(complete) }
        }
        if statement.isContinuing { execute(statement.precedingText) }
        return 0
    }

    private func execute(_ code: String) {
        flag.reset()
        switch session.execute(code, sink: sink, cancellation: flag) {
        case .ok(let result):
            if let result, !result.plain.isEmpty { print(result.plain) }
        case .error(_, let message, _):
            FileHandle.standardError.write(Data((message + "\n").utf8))
        case .interrupted(let message):
            FileHandle.standardError.write(Data((message + "\n").utf8))
        }
        flag.reset()
        fflush(nil)
    }
}
