import Foundation
import Testing
@testable import ReindexKit

struct ChunkerTests {
    // MARK: Short texts

    @Test func aTextThatFitsIsOneChunkEqualToTheWhole() {
        let chunker = Chunker(size: 100, overlap: 15)
        #expect(chunker.chunks("Hello, world.") == [Chunk(start: 0, end: 13)])
        let exact = String(repeating: "abcd ", count: 20)  // exactly 100 scalars
        #expect(chunker.chunks(exact) == [Chunk(start: 0, end: 100)])
        #expect(chunker.chunks("") == [Chunk(start: 0, end: 0)])
        let family = String(repeating: "👨‍👩‍👧‍👦", count: 14)  // 98 scalars
        #expect(chunker.chunks(family) == [Chunk(start: 0, end: 98)])
        #expect(chunker.chunks(exact + "x").count == 2)
    }

    // MARK: Cover, sizes, overlap and grapheme clusters, on every kind of text

    static let texts: [(String, String)] = [
        ("prose", Sample.document(seed: 1, paragraphs: 40)),
        ("one huge paragraph", Sample.paragraph(seed: 2, sentences: 300)),
        ("lines without blank lines", Sample.lines(seed: 3, count: 400)),
        ("no whitespace", Sample.base64(seed: 4, count: 30_000)),
        ("CJK without spaces", Sample.cjk(seed: 5, sentences: 400)),
        ("emoji ZWJ sequences", Sample.emoji(seed: 6, count: 3_000)),
        ("combining marks", Sample.combining(seed: 7, count: 4_000)),
        ("mixed", Sample.mixed(seed: 8, paragraphs: 60)),
        ("CRLF lines", Sample.document(seed: 9, paragraphs: 30).replacingOccurrences(of: "\n", with: "\r\n")),
    ]

    @Test(arguments: [(200, 30), (512, 77), (1000, 150), (2000, 0), (300, 1000)])
    func chunksCoverTheTextWithinSizeAndOverlap(size: Int, overlap: Int) {
        let chunker = Chunker(size: size, overlap: overlap)
        for (name, text) in Self.texts {
            let chunks = chunker.chunks(text)
            let count = text.unicodeScalars.count
            let graphemes = Sample.graphemeBoundaries(text)
            let scalars = Array(text.unicodeScalars)
            #expect(chunks.first?.start == 0, "\(name)")
            #expect(chunks.last?.end == count, "\(name)")
            #expect(chunks.count > 1, "\(name)")
            for (k, chunk) in chunks.enumerated() {
                #expect(chunk.count > 0 && chunk.count <= size, "\(name): chunk \(k) has \(chunk.count) scalars")
                #expect(graphemes.contains(chunk.start) && graphemes.contains(chunk.end),
                        "\(name): chunk \(k) \(chunk) cuts a grapheme cluster")
                // The span is whole text: it round-trips through String and starts a cluster.
                let piece = String(String.UnicodeScalarView(scalars[chunk.start..<chunk.end]))
                #expect(piece.unicodeScalars.count == chunk.count, "\(name)")
                guard k > 0 else { continue }
                let previous = chunks[k - 1]
                #expect(chunk.start > previous.start && chunk.end > previous.end, "\(name): chunk \(k) goes backwards")
                #expect(chunk.start <= previous.end, "\(name): a gap before chunk \(k)")
                let shared = previous.end - chunk.start
                #expect(shared <= min(overlap, size / 2), "\(name): chunk \(k) repeats \(shared) scalars")
            }
        }
    }

    /// Tiny sizes still cover the text; only a grapheme cluster longer than `size` makes a longer chunk.
    @Test func tinySizesCoverTheTextAndKeepClustersWhole() {
        let text = "ab cd. 👨‍👩‍👧‍👦 e\u{301}f\n\ngh 日本。語"
        let graphemes = Sample.graphemeBoundaries(text)
        let scalars = Array(text.unicodeScalars)
        for size in 1...12 {
            for overlap in [0, 1, 3] {
                let chunks = Chunker(size: size, overlap: overlap).chunks(text)
                #expect(chunks.first?.start == 0 && chunks.last?.end == scalars.count, "size \(size)")
                for (k, chunk) in chunks.enumerated() {
                    #expect(graphemes.contains(chunk.start) && graphemes.contains(chunk.end), "size \(size): \(chunk)")
                    if chunk.count > size {
                        #expect(String(String.UnicodeScalarView(scalars[chunk.start..<chunk.end])).count == 1, "size \(size): \(chunk)")
                    }
                    if k > 0 { #expect(chunk.start <= chunks[k - 1].end && chunk.end > chunks[k - 1].end, "size \(size)") }
                }
            }
        }
    }

    @Test func overlapIsAboutTheDeclaredAmountAndStartsAWord() {
        let chunker = Chunker(size: 1000, overlap: 150)
        let text = Sample.document(seed: 11, paragraphs: 60)
        let scalars = Array(text.unicodeScalars)
        let chunks = chunker.chunks(text)
        for (previous, chunk) in zip(chunks, chunks.dropFirst()) {
            let shared = previous.end - chunk.start
            #expect(shared > 100 && shared <= 150, "overlap \(shared)")
            #expect(scalars[chunk.start - 1].properties.isWhitespace && !scalars[chunk.start].properties.isWhitespace)
        }
    }

    // MARK: Where the cuts fall

    @Test func chunksEndAtParagraphsWhenThereAreSome() {
        let text = Sample.document(seed: 12, paragraphs: 60)  // paragraphs well under half the size
        let scalars = Array(text.unicodeScalars)
        let chunks = Chunker(size: 1500, overlap: 200).chunks(text)
        #expect(chunks.count > 5)
        for chunk in chunks.dropLast() {
            #expect(scalars[chunk.end - 1] == "\n" && scalars[chunk.end - 2] == "\n", "chunk \(chunk) does not end a paragraph")
        }
    }

    @Test func aHugeParagraphIsCutBetweenSentences() {
        let text = Sample.paragraph(seed: 13, sentences: 200)
        let scalars = Array(text.unicodeScalars)
        for chunk in Chunker(size: 800, overlap: 120).chunks(text).dropLast() {
            #expect(scalars[chunk.end - 1] == " " && ".?!".unicodeScalars.contains(scalars[chunk.end - 2]),
                    "chunk \(chunk) does not end a sentence")
        }
    }

    @Test func cjkIsCutAfterItsFullStops() {
        let text = Sample.cjk(seed: 14, sentences: 300)
        let scalars = Array(text.unicodeScalars)
        let chunks = Chunker(size: 300, overlap: 45).chunks(text)
        #expect(chunks.count > 10)
        for chunk in chunks.dropLast() { #expect(scalars[chunk.end - 1] == "。") }
    }

    @Test func textWithoutWhitespaceIsCutBetweenGraphemeClusters() {
        for text in [Sample.base64(seed: 15, count: 10_000), Sample.emoji(seed: 16, count: 2_000), Sample.combining(seed: 17, count: 3_000)] {
            let graphemes = Sample.graphemeBoundaries(text)
            let chunks = Chunker(size: 256, overlap: 38).chunks(text)
            #expect(chunks.count > 10)
            for chunk in chunks {
                #expect(chunk.count <= 256)
                #expect(graphemes.contains(chunk.start) && graphemes.contains(chunk.end))
            }
            // The overlap is kept even without words to align it to.
            for (previous, chunk) in zip(chunks, chunks.dropFirst()) { #expect(previous.end - chunk.start >= 38 / 2) }
        }
    }

    @Test func aFamilyEmojiAndCombiningMarksStayWhole() {
        // Clusters of 7 and 11 scalars at every place a cut could fall.
        let family = "👨‍👩‍👧‍👦", zalgo = "e\u{301}\u{302}\u{303}\u{304}\u{306}\u{307}\u{308}\u{30A}\u{30B}\u{30C}"
        for size in 64...80 {
            let text = String(repeating: family + zalgo + "🇫🇷", count: 40)
            let graphemes = Sample.graphemeBoundaries(text)
            for chunk in Chunker(size: size, overlap: size / 7).chunks(text) {
                #expect(graphemes.contains(chunk.start) && graphemes.contains(chunk.end), "size \(size): \(chunk)")
            }
        }
    }

    @Test func sameTextSameChunks() {
        for (_, text) in Self.texts {
            #expect(Chunker(size: 700, overlap: 100).chunks(text) == Chunker(size: 700, overlap: 100).chunks(text))
            #expect(Chunker(size: 700, overlap: 100).chunks(String(text)) == Chunker(size: 700, overlap: 100).chunks(text))
        }
    }

    // MARK: Stable under edits

    /// Chunk texts of `new` that `old` did not have.
    static func changed(_ old: String, _ new: String, _ chunker: Chunker) -> (texts: Int, chunks: Int) {
        func texts(_ text: String) -> [String] {
            let scalars = Array(text.unicodeScalars)
            return chunker.chunks(text).map { String(String.UnicodeScalarView(scalars[$0.start..<$0.end])) }
        }
        let before = Set(texts(old))
        let after = texts(new)
        return (after.filter { !before.contains($0) }.count, after.count)
    }

    @Test func appendingAParagraphChangesAtMostTheLastTwoChunks() {
        let chunker = Chunker(size: 1000, overlap: 150)
        var worst = 0
        var histogram: [Int: Int] = [:]
        for seed in 1...40 {
            let document = Sample.document(seed: UInt64(100 + seed), paragraphs: 64)
            let appended = document + "\n\n" + Sample.paragraph(seed: UInt64(900 + seed), sentences: 3)
            let old = chunker.chunks(document), new = chunker.chunks(appended)
            #expect(old.count >= 18 && old.count <= 32)
            // The spans before the last two are the same.
            #expect(Array(new.prefix(old.count - 2)) == Array(old.dropLast(2)))
            let (differ, _) = Self.changed(document, appended, chunker)
            #expect(differ <= 2, "seed \(seed): \(differ) chunks differ")
            worst = max(worst, differ)
            histogram[differ, default: 0] += 1
        }
        print("append one paragraph to a ~20-chunk document: chunks that differ \(histogram.sorted { $0.key < $1.key }) (worst \(worst))")
    }

    @Test func editingOneWordChangesOnlyTheChunksAroundIt() {
        let chunker = Chunker(size: 1000, overlap: 150)
        var histogram: [Int: Int] = [:]
        var chunkCounts: [Int] = []
        for seed in 1...40 {
            let paragraphs = Sample.paragraphs(seed: UInt64(200 + seed), count: 64)
            var edited = paragraphs
            edited[32] = Sample.replacingOneWord(in: paragraphs[32], seed: UInt64(seed))
            #expect(edited[32] != paragraphs[32])
            let (differ, total) = Self.changed(paragraphs.joined(separator: "\n\n"), edited.joined(separator: "\n\n"), chunker)
            #expect(differ >= 1 && differ <= 3, "seed \(seed): \(differ) of \(total) chunks differ")
            histogram[differ, default: 0] += 1
            chunkCounts.append(total)
        }
        print("edit one word in the middle paragraph of a \(chunkCounts.min()!)-\(chunkCounts.max()!)-chunk document: "
              + "chunks that differ \(histogram.sorted { $0.key < $1.key })")
    }

    @Test func editingOneWordInsideAHugeParagraphChangesFewChunks() {
        let chunker = Chunker(size: 1000, overlap: 150)
        var histogram: [Int: Int] = [:]
        for seed in 1...40 {
            let text = Sample.paragraph(seed: UInt64(300 + seed), sentences: 250)
            let middle = text.index(text.startIndex, offsetBy: text.count / 2)
            let wordStart = text[middle...].firstIndex(of: " ")!
            let edited = String(text[..<wordStart]) + " inserted" + String(text[wordStart...])
            let (differ, total) = Self.changed(text, edited, chunker)
            #expect(total >= 15 && differ <= 3, "seed \(seed): \(differ) of \(total) chunks differ")
            histogram[differ, default: 0] += 1
        }
        print("insert one word in the middle of one huge paragraph (~25 chunks): chunks that differ \(histogram.sorted { $0.key < $1.key })")
    }

    // MARK: split

    @Test func splitHalvesCoverTheChunkAtABoundary() throws {
        let chunker = Chunker(size: 1000, overlap: 150)
        for (name, text) in Self.texts {
            let graphemes = Sample.graphemeBoundaries(text)
            for chunk in chunker.chunks(text).prefix(6) where chunk.count >= Chunker.minimumSplit {
                let (first, second) = try #require(chunker.split(chunk, of: text), "\(name)")
                #expect(first.start == chunk.start && second.end == chunk.end, "\(name)")
                #expect(second.start <= first.end && second.start > first.start, "\(name): \(first) \(second)")
                #expect(first.count < chunk.count && second.count < chunk.count, "\(name)")
                #expect(first.count >= chunk.count / 4 && second.count >= chunk.count / 4, "\(name): not near the middle")
                #expect(first.end - second.start <= chunk.count / 8, "\(name): halves overlap too much")
                #expect(graphemes.contains(first.end) && graphemes.contains(second.start), "\(name)")
            }
        }
    }

    @Test func splitPrefersTheBestBoundary() throws {
        let chunker = Chunker(size: 1000, overlap: 0)
        let text = "First paragraph, a sentence here. And another one there.\n\nSecond paragraph with words, and more of them."
        let whole = Chunk(start: 0, end: text.unicodeScalars.count)
        let (first, second) = try #require(chunker.split(whole, of: text))
        let scalars = Array(text.unicodeScalars)
        #expect(String(String.UnicodeScalarView(scalars[first.start..<first.end])).hasSuffix("there.\n\n"))
        #expect(second.start == first.end)
        // A slice of a longer text: the offsets are the text's.
        let prefixed = String(repeating: "x ", count: 50) + text
        let (a, b) = try #require(chunker.split(Chunk(start: 100, end: 100 + whole.end), of: prefixed))
        #expect(a == Chunk(start: 100, end: 100 + first.end) && b == Chunk(start: 100 + second.start, end: 100 + whole.end))
    }

    @Test func splitIsNilUnderTheMinimum() {
        let chunker = Chunker(size: 1000, overlap: 150)
        let text = Sample.document(seed: 18, paragraphs: 3)
        #expect(Chunker.minimumSplit >= 16)
        #expect(chunker.split(Chunk(start: 0, end: Chunker.minimumSplit - 1), of: text) == nil)
        #expect(chunker.split(Chunk(start: 10, end: 10), of: text) == nil)
        #expect(chunker.split(Chunk(start: 0, end: Chunker.minimumSplit), of: text) != nil)
        // A span past the end of the text, or one grapheme cluster, has nothing to split.
        #expect(chunker.split(Chunk(start: 0, end: text.unicodeScalars.count + 1), of: text) == nil)
        #expect(chunker.split(Chunk(start: 0, end: 70), of: "e" + String(repeating: "\u{301}", count: 69)) == nil)
    }

    // MARK: Speed

    @Test func oneMegabyteChunksQuickly() {
        let text = Sample.mixed(seed: 19, paragraphs: 6_200)
        let chunker = Chunker(size: 2000, overlap: 300)
        let clock = ContinuousClock()
        var chunks: [Chunk] = []
        let elapsed = clock.measure { chunks = chunker.chunks(text) }
        let count = text.unicodeScalars.count
        let average = chunks.map(\.count).reduce(0, +) / chunks.count
        print("chunked \(count) scalars (\(text.utf8.count) UTF-8 bytes) into \(chunks.count) chunks "
              + "(average \(average) of 2000 scalars, overlap included) in \(elapsed)")
        #expect(count >= 1_000_000)
        #expect(chunks.first?.start == 0 && chunks.last?.end == count)
        let ascii = String(repeating: Sample.document(seed: 20, paragraphs: 100), count: 40)
        let asciiElapsed = clock.measure { chunks = chunker.chunks(ascii) }
        print("chunked \(ascii.utf8.count) bytes of ASCII prose into \(chunks.count) chunks in \(asciiElapsed)")
    }
}

/// Deterministic sample texts.
enum Sample {
    struct Random {
        var state: UInt64
        init(_ seed: UInt64) { state = seed &* 0x2545_F491_4F6C_DD1D }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
        mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }
    }

    static let words = """
        the index vector file model server batch row query chunk paragraph sentence embedding primary database \
        journal lock writer reader page transaction checkpoint resume failure retry backoff window token limit \
        a of to in and is for with on that by as it be are this from or at which an not can when each all its \
        rebuild incremental derived source passage overlap boundary cluster stable edit append document search \
        retrieval recall cosine norm dimension float blob schema format meta count scan plan reuse publish verify
        """.split(separator: " ").map(String.init)

    static func sentence(_ r: inout Random) -> String {
        let n = r.int(5...18)
        var words = (0..<n).map { _ in r.pick(Self.words) }
        words[0] = words[0].prefix(1).uppercased() + words[0].dropFirst()
        return words.joined(separator: " ") + r.pick([".", ".", ".", "?", "!"])
    }

    static func paragraph(seed: UInt64, sentences: Int) -> String {
        var r = Random(seed)
        return (0..<sentences).map { _ in sentence(&r) }.joined(separator: " ")
    }

    static func paragraphs(seed: UInt64, count: Int) -> [String] {
        var r = Random(seed)
        return (0..<count).map { _ in (0..<r.int(1...5)).map { _ in sentence(&r) }.joined(separator: " ") }
    }

    static func document(seed: UInt64, paragraphs count: Int) -> String {
        paragraphs(seed: seed, count: count).joined(separator: "\n\n")
    }

    static func lines(seed: UInt64, count: Int) -> String {
        var r = Random(seed)
        return (0..<count).map { _ in (0..<r.int(3...12)).map { _ in r.pick(words) }.joined(separator: " ") }.joined(separator: "\n")
    }

    static func base64(seed: UInt64, count: Int) -> String {
        var r = Random(seed)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        return String((0..<count).map { _ in alphabet[r.int(0...63)] })
    }

    static func cjk(seed: UInt64, sentences: Int) -> String {
        var r = Random(seed)
        let ideographs = Array("索引向量文件模型服务器批量行查询段落句子嵌入主数据库日志锁写入读取页面事务检查点恢复失败重试窗口")
        return (0..<sentences).map { _ in String((0..<r.int(8...30)).map { _ in r.pick(ideographs) }) + "。" }.joined()
    }

    static func emoji(seed: UInt64, count: Int) -> String {
        var r = Random(seed)
        let items = ["👨‍👩‍👧‍👦", "🏳️‍🌈", "👩🏽‍💻", "🇯🇵", "🇫🇷", "❤️", "a", "1", "e\u{301}"]
        return (0..<count).map { _ in r.pick(items) }.joined()
    }

    static func combining(seed: UInt64, count: Int) -> String {
        var r = Random(seed)
        return (0..<count).map { _ in
            "aeiou".map(String.init)[r.int(0...4)] + String(repeating: "\u{301}", count: r.int(0...4)) + (r.int(0...9) == 0 ? " " : "")
        }.joined()
    }

    /// Prose with every kind of text in it: accents, emoji, CJK, code-like lines.
    static func mixed(seed: UInt64, paragraphs count: Int) -> String {
        var r = Random(seed)
        return (0..<count).map { i -> String in
            switch i % 5 {
            case 1: return (0..<r.int(1...4)).map { _ in sentence(&r) }.joined(separator: " ") + " Café naïve résumé 👩🏽‍💻 🇯🇵."
            case 3: return cjk(seed: r.next(), sentences: r.int(2...6))
            case 4: return (0..<r.int(2...8)).map { _ in "    let x = f(" + r.pick(words) + ")" }.joined(separator: "\n")
            default: return (0..<r.int(1...5)).map { _ in sentence(&r) }.joined(separator: " ")
            }
        }.joined(separator: "\n\n")
    }

    static func replacingOneWord(in paragraph: String, seed: UInt64) -> String {
        var words = paragraph.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let i = words.count / 2
        words[i] = words[i] == "reindexing" ? "rebuilt" : "reindexing"
        return words.joined(separator: " ")
    }

    /// Scalar offsets where a grapheme cluster starts (and the end).
    static func graphemeBoundaries(_ text: String) -> Set<Int> {
        var offsets: Set<Int> = [0]
        var position = 0
        for character in text {
            position += character.unicodeScalars.count
            offsets.insert(position)
        }
        return offsets
    }
}
