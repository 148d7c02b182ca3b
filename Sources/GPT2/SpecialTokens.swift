extension Tokenizer {
    /// GPT-2's one special token, as text.
    public static let endOfTextLiteral = "<|endoftext|>"

    /// `encode`, optionally reading the literal `<|endoftext|>` as the special token 50256, as Hugging Face's
    /// tokenizer and TransformerLens's `to_tokens` do (tiktoken's `encode(allowed_special="all")`): the text is cut
    /// at each literal and the pieces are encoded on their own. Without `special` the literal is ordinary text
    /// (tiktoken's `encode_ordinary`), which is `encode`'s default.
    public func encode(_ text: String, special: Bool) -> [Int32] {
        guard special, text.contains(Self.endOfTextLiteral) else { return encode(text) }
        var ids: [Int32] = []
        for (i, piece) in text.split(separator: Self.endOfTextLiteral, omittingEmptySubsequences: false).enumerated() {
            if i > 0 { ids.append(Self.endOfText) }
            if !piece.isEmpty { ids.append(contentsOf: encode(String(piece))) }
        }
        return ids
    }
}
