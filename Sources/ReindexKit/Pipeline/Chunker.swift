/// One passage of a row: its place in the row's text, in Unicode scalars (code points), end exclusive.
public struct Chunk: Sendable, Equatable {
    public var start: Int
    public var end: Int

    public init(start: Int, end: Int) {
        self.start = start
        self.end = end
    }

    /// Its length in Unicode scalars.
    public var count: Int { end - start }
}

/// Cuts a row's text into overlapping passages that each fit the model's window.
///
/// Cuts are content-defined, so an edit changes only the chunks around it.
/// Every place between two grapheme clusters gets a key: its level (paragraph
/// > line > sentence > word > grapheme) then a hash of the 32 non-whitespace
/// scalars before it. A place is a cut when its key is the largest within a
/// third of a chunk on either side, so whether it is a cut depends only on the
/// text around it, never on where the text or a previous chunk starts: an edit
/// or an appended paragraph moves only the cuts within reach of it, and
/// nothing cascades. Cuts are at least a third of a chunk apart; a cut weaker
/// than both its neighbours is dropped when the stretches beside it fit in one
/// chunk together, and a stretch longer than a chunk is divided evenly at the
/// best places near its equal parts (cores average about 60% of the room). Each chunk after the first then
/// starts `overlap` scalars before its cut, moved forward to the start of a
/// word (within half the overlap; else to a grapheme cluster). Nothing ever
/// cuts a Unicode scalar or a grapheme cluster (a chunk is longer than `size`
/// only if one grapheme cluster is).
///
/// Linear in the text: one pass to find grapheme clusters, one to rate the
/// places, one sliding-window maximum, and one scan per long stretch.
public struct Chunker: Sendable, Equatable {
    /// Target size of a chunk in Unicode scalars; a chunk is never longer.
    public var size: Int
    /// Scalars each chunk repeats from the end of the previous one (about 15% of `size` by default).
    public var overlap: Int

    public init(size: Int, overlap: Int) {
        self.size = size
        self.overlap = overlap
    }

    /// Chunks shorter than this are not split any further.
    public static let minimumSplit: Int = 64

    /// `size`, at least 1.
    private var limit: Int { max(size, 1) }
    /// `overlap`, from 0 to `size / 2`.
    private var clampedOverlap: Int { min(max(overlap, 0), limit / 2) }

    /// The chunks of `text`, in order, covering it entirely (consecutive chunks overlap by about `overlap`
    /// scalars, never more than `size / 2`). A text of at most `size` scalars is one chunk [0, count).
    public func chunks(_ text: String) -> [Chunk] {
        let scalars = Array(text.unicodeScalars)
        let n = scalars.count
        guard n > limit else { return [Chunk(start: 0, end: n)] }
        let boundaries = Boundaries(scalars)
        let overlap = clampedOverlap
        let room = max(limit - overlap, 1)  // a core, so that core + overlap fits in `size`

        // Cores: [cuts[k], cuts[k + 1]).
        var cuts = [0]
        for cut in boundaries.strongCuts(room: room) + [n] where cut > cuts[cuts.count - 1] {
            boundaries.divide(from: cuts[cuts.count - 1], to: cut, into: room, appendingTo: &cuts)
        }

        var chunks: [Chunk] = []
        chunks.reserveCapacity(cuts.count - 1)
        for k in 0..<(cuts.count - 1) {
            // Less overlap only before a core longer than the room (one grapheme cluster bigger than that).
            let allowed = min(overlap, max(limit - (cuts[k + 1] - cuts[k]), 0))
            let start = k == 0 ? 0 : boundaries.overlapStart(before: cuts[k], by: allowed, notBefore: cuts[k - 1] + 1)
            chunks.append(Chunk(start: start, end: cuts[k + 1]))
        }
        return chunks
    }

    /// Splits `chunk` of `text` in two at the best boundary inside it (the server said it is too long),
    /// nothing dropped: the two halves cover the chunk's span (they may overlap a little).
    /// nil when the chunk is too short to split (fewer than `Chunker.minimumSplit` scalars).
    public func split(_ chunk: Chunk, of text: String) -> (Chunk, Chunk)? {
        guard chunk.start >= 0, chunk.count >= Self.minimumSplit else { return nil }
        let view = text.unicodeScalars
        guard let from = view.index(view.startIndex, offsetBy: chunk.start, limitedBy: view.endIndex),
              let to = view.index(from, offsetBy: chunk.count, limitedBy: view.endIndex)
        else { return nil }
        // The span alone: its edges are boundaries, so its grapheme clusters are the text's.
        let boundaries = Boundaries(Array(view[from..<to]))
        let n = chunk.count
        guard let cut = boundaries.middleCut() else { return nil }
        let second = boundaries.overlapStart(before: cut, by: min(clampedOverlap, n / 8), notBefore: 1)
        return (Chunk(start: chunk.start, end: chunk.start + cut), Chunk(start: chunk.start + second, end: chunk.end))
    }
}

/// Where a text may be cut, and how good each place is.
private struct Boundaries {
    enum Level {
        static let none: Int8 = -1  // inside a grapheme cluster, or an edge of the text
        static let grapheme: Int8 = 0
        static let word: Int8 = 1
        static let sentence: Int8 = 2
        static let line: Int8 = 3
        static let paragraph: Int8 = 4
    }

    let count: Int
    /// Per position 0...count: the best kind of boundary that starts there.
    private(set) var level: [Int8]
    /// Per position 0...count: the boundary's rank, its level then a hash of the 32 non-whitespace
    /// scalars before it; 0 inside a grapheme cluster and at the edges.
    private(set) var key: [UInt64]

    init(_ scalars: [Unicode.Scalar]) {
        let n = scalars.count
        count = n
        var level = Self.graphemeLevels(scalars)
        var key = [UInt64](repeating: 0, count: n + 1)  // first the hashes, then the keys
        // Unsafe buffers: bounds-checked subscripts make this loop several times slower in debug builds.
        scalars.withUnsafeBufferPointer { s in
            level.withUnsafeMutableBufferPointer { level in
                key.withUnsafeMutableBufferPointer { key in
                    Self.rate(s, level, key)
                    for p in 0...n { key[p] = level[p] < Level.grapheme ? 0 : UInt64(level[p] + 1) << 60 | key[p] >> 4 }
                }
            }
        }
        self.level = level
        self.key = key
    }

    /// Sets the level of every place where a word starts, and the hash before every place.
    private static func rate(_ s: UnsafeBufferPointer<Unicode.Scalar>, _ level: UnsafeMutableBufferPointer<Int8>,
                             _ hash: UnsafeMutableBufferPointer<UInt64>) {
        let n = s.count
        var rolling: UInt64 = 0
        var i = 0
        while i < n {
            let v = s[i]
            guard isWhitespace(v) else {
                // Gear hash: after 32 steps a scalar is shifted out, so the hash is local.
                rolling = (rolling << 2) &+ gear(v.value)
                hash[i + 1] = finalize(rolling)
                if isFullStop(v) {
                    // A mark that needs no space after it (`。`): the next sentence may start right after it.
                    var j = i + 1
                    while j < n, j - i <= 4, isCloser(s[j]) { j += 1 }
                    if j < n, !isWhitespace(s[j]), level[j] >= Level.grapheme, level[j] < Level.sentence { level[j] = Level.sentence }
                }
                i += 1
                continue
            }
            // A run of whitespace: the boundary is where the next word starts.
            let runStart = i
            var lineBreaks = 0
            var paragraph = false
            while i < n, isWhitespace(s[i]) {
                switch s[i].value {
                case 0x0D: if i + 1 >= n || s[i + 1].value != 0x0A { lineBreaks += 1 }  // CR LF is one break
                case 0x0A, 0x0B, 0x85, 0x2028: lineBreaks += 1
                case 0x0C, 0x2029: paragraph = true
                default: break
                }
                hash[i + 1] = hash[i]
                i += 1
            }
            guard runStart > 0, i < n, level[i] >= Level.grapheme else { continue }
            level[i] = paragraph || lineBreaks >= 2 ? Level.paragraph
                : lineBreaks == 1 ? Level.line
                : endsSentence(s, before: runStart) ? Level.sentence
                : Level.word
        }
    }

    /// `grapheme` where a grapheme cluster starts (not at the edges), `none` elsewhere.
    private static func graphemeLevels(_ s: [Unicode.Scalar]) -> [Int8] {
        let n = s.count
        var level = [Int8](repeating: Level.grapheme, count: n + 1)
        level[0] = Level.none
        level[n] = Level.none
        if s.allSatisfy({ $0.value < 0x80 }) {
            // ASCII: every scalar is a cluster, except CR LF.
            for i in 1..<max(n, 1) where s[i - 1].value == 0x0D && s[i].value == 0x0A { level[i] = Level.none }
            return level
        }
        level.withUnsafeMutableBufferPointer { level in
            for i in 1..<max(n, 1) { level[i] = Level.none }
            var position = 0
            for character in String(String.UnicodeScalarView(s)) {
                position += character.unicodeScalars.count
                if position < n { level[position] = Level.grapheme }
            }
        }
        return level
    }

    /// The cuts that depend only on the text around them: the local maxima of the key within a third of
    /// `room`, less each one that is weaker than both its neighbours when the two stretches beside it fit
    /// in `room` together (such cuts are never next to each other, so dropping one never depends on
    /// another far away).
    func strongCuts(room: Int) -> [Int] {
        let maxima = localMaxima(radius: max(room / 3, 1))
        var cuts: [Int] = []
        cuts.reserveCapacity(maxima.count)
        for (i, cut) in maxima.enumerated() {
            let before = i > 0 ? maxima[i - 1] : 0
            let after = i + 1 < maxima.count ? maxima[i + 1] : count
            let weaker = (i == 0 || key[cut] < key[before]) && (i + 1 == maxima.count || key[cut] < key[after])
            if weaker, after - before <= room { continue }
            cuts.append(cut)
        }
        return cuts
    }

    /// The boundaries whose key is the largest within `radius` scalars on either side (ties: the first),
    /// at least `radius` from either edge of the text. Linear: a sliding-window maximum.
    func localMaxima(radius: Int) -> [Int] {
        var maxima: [Int] = []
        // Positions of the window's candidates, keys decreasing (an equal key stays behind the first).
        // Each position enters once, so a plain array with a moving head is enough.
        var window = [Int](repeating: 0, count: count + 1)
        var head = 0, tail = 0
        key.withUnsafeBufferPointer { key in
            window.withUnsafeMutableBufferPointer { window in
                for q in 0..<(count + radius) {
                    if q < count, key[q] > 0 {
                        while tail > head, key[window[tail - 1]] < key[q] { tail -= 1 }
                        window[tail] = q
                        tail += 1
                    }
                    let p = q - radius
                    guard p >= radius, p <= count - radius, key[p] > 0 else { continue }
                    while window[head] < p - radius { head += 1 }
                    if window[head] == p { maxima.append(p) }
                }
            }
        }
        return maxima
    }

    /// Appends the cuts that divide [`start`, `end`) into pieces of at most `room` scalars, then `end`:
    /// none if it fits, else the best boundary near each of its equal parts (within a quarter of a
    /// part), and the same again for a piece still too long. Depends only on the text in the stretch.
    func divide(from start: Int, to end: Int, into room: Int, appendingTo cuts: inout [Int]) {
        let length = end - start
        guard length > room else { cuts.append(end); return }
        let parts = (length + room - 1) / room
        var previous = start
        for i in 1..<parts {
            let target = start + i * length / parts
            let reach = max(length / parts / 4, 1)
            var best = -1
            var bestKey: UInt64 = 0
            var p = max(target - reach, previous + 1)
            while p <= min(target + reach, end - 1) {
                let k = key[p]
                if k > bestKey { best = p; bestKey = k }
                p += 1
            }
            if best < 0 { best = nearestBoundary(to: target, after: previous, before: end) ?? -1 }
            guard best > previous else { continue }
            divide(from: previous, to: best, into: room, appendingTo: &cuts)
            previous = best
        }
        if previous == start {
            // No boundary inside at all (one grapheme cluster): it cannot be divided.
            cuts.append(end)
            return
        }
        divide(from: previous, to: end, into: room, appendingTo: &cuts)
    }

    /// The boundary in (`after`, `before`) nearest `target`, if any.
    func nearestBoundary(to target: Int, after: Int, before: Int) -> Int? {
        var d = 0
        while target - d > after || target + d < before {
            if target - d > after, target - d < before, level[target - d] >= Level.grapheme { return target - d }
            if target + d > after, target + d < before, level[target + d] >= Level.grapheme { return target + d }
            d += 1
        }
        return nil
    }

    /// Where a chunk whose core starts at `cut` begins: `by` scalars earlier (not before `floor`), moved
    /// forward to the start of a word within half the overlap; else (text without spaces, a long word or
    /// URL there) to the start of a grapheme cluster, so that the overlap stays about `by`.
    func overlapStart(before cut: Int, by overlap: Int, notBefore floor: Int) -> Int {
        let from = max(cut - overlap, floor, 0)
        guard from < cut else { return cut }
        for p in from..<max(cut - overlap / 2, from + 1) where level[p] >= Level.word { return p }
        for p in from..<cut where level[p] >= Level.grapheme { return p }
        return cut
    }

    /// The best place to halve the whole text: the best level in its middle half, nearest the middle;
    /// else the boundary nearest the middle. nil when there is none.
    func middleCut() -> Int? {
        let middle = count / 2
        var best: Int?
        var bestLevel = Level.none
        for p in (count / 4)...(count - count / 4) where level[p] > bestLevel
            || (level[p] == bestLevel && level[p] >= Level.grapheme && abs(p - middle) < abs(best! - middle)) {
            best = p
            bestLevel = level[p]
        }
        if let best { return best }
        return (1..<max(count, 1)).filter { level[$0] >= Level.grapheme }.min { abs($0 - middle) < abs($1 - middle) }
    }

    // MARK: Scalars

    static func isWhitespace(_ v: Unicode.Scalar) -> Bool {
        let x = v.value
        if x < 0x80 { return x == 0x20 || (0x09...0x0D).contains(x) }
        return v.properties.isWhitespace
    }

    /// Marks that end a sentence when a space follows.
    static func isSentenceMark(_ v: Unicode.Scalar) -> Bool {
        switch v.value {
        case 0x21, 0x2E, 0x3F,  // ! . ?
             0x2026, 0x203C, 0x203D, 0x2047, 0x2048, 0x2049,  // … ‼ ‽ ⁇ ⁈ ⁉
             0x061F, 0x06D4, 0x0964, 0x0965, 0x1362:  // Arabic ? and full stop, Devanagari danda, Ethiopic
            return true
        default:
            return isFullStop(v)
        }
    }

    /// Full-width marks that end a sentence without a space after them.
    static func isFullStop(_ v: Unicode.Scalar) -> Bool {
        switch v.value {
        case 0x3002, 0xFF0E, 0xFF01, 0xFF1F, 0xFF61: return true  // 。 ． ！ ？ ｡
        default: return false
        }
    }

    /// Quotes and brackets that may close a sentence after its mark.
    static func isCloser(_ v: Unicode.Scalar) -> Bool {
        switch v.value {
        case 0x22, 0x27, 0x29, 0x5D, 0x7D, 0xBB, 0x2019, 0x201D, 0x203A,
             0x300D, 0x300F, 0x3011, 0x3015, 0x3009, 0x300B, 0xFF09, 0xFF3D:
            return true
        default:
            return false
        }
    }

    /// Whether the text before `end` (a run of whitespace starts there) ends with a sentence mark,
    /// perhaps followed by a few closing quotes or brackets.
    static func endsSentence(_ s: UnsafeBufferPointer<Unicode.Scalar>, before end: Int) -> Bool {
        var k = end - 1
        while k >= 0, end - k <= 4, isCloser(s[k]) { k -= 1 }
        return k >= 0 && isSentenceMark(s[k])
    }

    // MARK: Hashing (fixed constants: the same cuts on every machine and every run)

    static func gear(_ x: UInt32) -> UInt64 {
        var z = UInt64(x) &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    static func finalize(_ k: UInt64) -> UInt64 {
        var k = k
        k ^= k >> 33
        k &*= 0xFF51_AFD7_ED55_8CCD
        k ^= k >> 33
        k &*= 0xC4CE_B9FE_1A85_EC53
        return k ^ (k >> 33)
    }
}
