//! The shell-style glob used by `allowedDomains` (with `allowGlobDomains`) and
//! `allowedURISANs`: `*` matches any run of characters, including none and
//! including `.` and `/`, exactly like the glob Vault uses for these fields. There
//! is no `?`, no character class and no escaping; every other byte matches itself.
//!
//! Owns: matching only. Must not: allocate, backtrack exponentially, or know what
//! a domain or a URI is (callers normalise both sides first).

/// True when `subject` matches `pattern`, where each `*` stands for any sequence
/// of bytes. Runs in O(len(pattern) * len(subject)) at worst, without allocating.
pub fn glob_match(pattern: &str, subject: &str) -> bool {
    let (Some(first_star), Some(last_star)) = (pattern.find('*'), pattern.rfind('*')) else {
        // No `*` at all: the pattern is a literal.
        return pattern == subject;
    };
    let head = &pattern[..first_star];
    let tail = &pattern[last_star + 1..];
    if subject.len() < head.len() + tail.len()
        || !subject.starts_with(head)
        || !subject.ends_with(tail)
    {
        return false;
    }
    // What the `*`s (and any literal pieces between them) must cover.
    let mut window = &subject[head.len()..subject.len() - tail.len()];
    if first_star == last_star {
        return true;
    }
    // Leftmost match for every middle piece is optimal for `*`-only globs.
    for piece in pattern[first_star + 1..last_star].split('*') {
        match window.find(piece) {
            Some(at) => window = &window[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn literal_patterns_match_only_themselves() {
        assert!(glob_match("a.com", "a.com"));
        assert!(!glob_match("a.com", "b.a.com"));
        assert!(!glob_match("a.com", "a.co"));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "x"));
    }

    #[test]
    fn star_crosses_dots_and_slashes_and_may_be_empty() {
        assert!(glob_match("*.foo", "bar.foo"));
        assert!(glob_match("*.foo", "baz.fud.bar.foo"));
        assert!(!glob_match("*.foo", "foo"));
        assert!(glob_match("x*x.foo", "xx.foo"));
        assert!(glob_match("x*x.foo", "xyx.foo"));
        assert!(!glob_match("x*x.foo", "x.foo"));
        assert!(glob_match("spiffe://td/ns/*", "spiffe://td/ns/a/b"));
        assert!(glob_match("*", ""));
        assert!(glob_match("**", "abc"));
    }

    #[test]
    fn prefix_and_suffix_do_not_overlap() {
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("ab*ba", "abba"));
        assert!(glob_match("a*b*c", "a-b-c"));
        assert!(!glob_match("a*b*c", "a-c-b"));
        assert!(glob_match("*a*b*", "xxaxxbxx"));
        assert!(!glob_match("*a*b*", "xxbxxaxx"));
    }
}
