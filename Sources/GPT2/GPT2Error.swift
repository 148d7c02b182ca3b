// Module GPT2: see ../shared/design/nsae.md §2 and ../shared/reference/gpt2-runner.md.

/// A problem with a GPT-2 input: a tokenizer or checkpoint file, a hook name, or the shape of a forward request.
/// The message names the file, key or hook and says what was expected and what was found.
public struct GPT2Error: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
