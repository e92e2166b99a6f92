//! Finding the final answer in a completion: the content of the **last** `<answer>…</answer>` pair.
//!
//! Pairs are matched left to right, each `<answer>` with the first `</answer>` after it (the same as the
//! non-greedy regex `<answer>(.*?)</answer>` with `.` matching newlines, which most public Countdown
//! scorers use), and the last complete pair wins. Tags are lower-case and exact. Work is on bytes, so
//! invalid UTF-8 anywhere in a completion is harmless, and one linear pass finds every pair.

/// The opening tag.
pub const OPEN_TAG: &[u8] = b"<answer>";
/// The closing tag.
pub const CLOSE_TAG: &[u8] = b"</answer>";

/// Where the last complete answer pair sits in a completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerSpan<'a> {
    /// Bytes between the tags, untrimmed.
    pub content: &'a [u8],
    /// Byte offset just past the closing tag.
    pub end: usize,
    /// How many complete pairs the completion holds (>= 1).
    pub pairs: usize,
}

/// The content of the last `<answer>…</answer>` pair, or `None` if the completion has no complete pair.
pub fn extract_answer(completion: &[u8]) -> Option<&[u8]> {
    last_answer_span(completion).map(|span| span.content)
}

/// Like [`extract_answer`], also reporting where the pair ends and how many pairs there were.
pub fn last_answer_span(completion: &[u8]) -> Option<AnswerSpan<'_>> {
    let mut last = None;
    let mut pairs = 0;
    let mut from = 0;
    while let Some(open) = find(completion, OPEN_TAG, from) {
        let content_start = open + OPEN_TAG.len();
        let Some(close) = find(completion, CLOSE_TAG, content_start) else { break };
        let end = close + CLOSE_TAG.len();
        pairs += 1;
        last = Some((completion.get(content_start..close)?, end));
        from = end;
    }
    last.map(|(content, end)| AnswerSpan { content, end, pairs })
}

/// First occurrence of `needle` in `haystack[from..]`, as an absolute offset.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let rest = haystack.get(from..)?;
    rest.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ans(s: &str) -> Option<&str> {
        extract_answer(s.as_bytes()).map(|b| core::str::from_utf8(b).unwrap())
    }

    #[test]
    fn last_complete_pair_wins() {
        assert_eq!(ans("x <answer>1+2</answer> y <answer>3*4</answer> z"), Some("3*4"));
        assert_eq!(ans("<answer>1</answer><answer>2"), Some("1"), "unclosed trailing open is ignored");
        assert_eq!(ans("<answer>1<answer>2</answer>"), Some("1<answer>2"), "open pairs with the next close");
        assert_eq!(ans("<answer>a</answer></answer>"), Some("a"));
        assert_eq!(ans("<answer></answer>"), Some(""));
        assert_eq!(ans("<answer>\n1 +\n2\n</answer>"), Some("\n1 +\n2\n"), "content may span lines");
    }

    #[test]
    fn no_pair_means_none() {
        assert_eq!(ans(""), None);
        assert_eq!(ans("the answer is 24"), None);
        assert_eq!(ans("<answer>24"), None);
        assert_eq!(ans("24</answer>"), None);
        assert_eq!(ans("</answer><answer>"), None);
        assert_eq!(ans("<ANSWER>24</ANSWER>"), None, "tags are lower-case");
        assert_eq!(ans("<answer >24</answer>"), None);
    }

    #[test]
    fn span_reports_end_and_count() {
        let s = b"<answer>1</answer> <answer>2</answer>!";
        let span = last_answer_span(s).unwrap();
        assert_eq!(span.content, b"2");
        assert_eq!(span.pairs, 2);
        assert_eq!(&s[span.end..], b"!");
    }

    #[test]
    fn invalid_utf8_is_fine() {
        let s = b"\xff\xfe<answer>\xc3(1+2)</answer>\x80";
        assert_eq!(extract_answer(s), Some(&b"\xc3(1+2)"[..]));
    }
}
