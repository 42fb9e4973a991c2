//! znode path rules, as ZooKeeper's PathUtils enforces them, and path helpers (parent, name,
//! ancestors). Pure, no I/O.

/// Why a path is invalid; the text matches ZooKeeper's messages.
pub fn validate(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("Path length must be > 0");
    }
    if !path.starts_with('/') {
        return Err("Path must start with / character");
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("Path must not end with / character");
    }
    for segment in path[1..].split('/') {
        if segment.is_empty() {
            return Err("empty node name specified");
        }
        if segment == "." || segment == ".." {
            return Err("relative paths not allowed");
        }
        if let Some(bad) = segment.chars().find(|&c| invalid_char(c)) {
            return Err(if bad == '\0' { "null character not allowed" } else { "invalid character" });
        }
    }
    Ok(())
}

fn invalid_char(c: char) -> bool {
    let c = c as u32;
    c == 0
        || (0x01..=0x1f).contains(&c)
        || (0x7f..=0x9f).contains(&c)
        || (0xd800..=0xf8ff).contains(&c)
        || (0xfff0..=0xffff).contains(&c)
}

/// The parent of a valid, non-root path ("/a" → "/", "/a/b" → "/a").
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of a valid path ("/a/b" → "b").
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// `parent` joined with `child`.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// The path and each of its ancestors up to "/", nearest first.
pub fn ancestors_inclusive(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let cur = next?;
        next = if cur == "/" { None } else { Some(parent(cur)) };
        Some(cur)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zookeeper_rules() {
        for ok in ["/", "/a", "/a/b", "/.a", "/a./b", "/a..", "/zookeeper", "/ü/日本"] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate(""), Err("Path length must be > 0"));
        assert_eq!(validate("a"), Err("Path must start with / character"));
        assert_eq!(validate("/a/"), Err("Path must not end with / character"));
        assert_eq!(validate("//a"), Err("empty node name specified"));
        assert_eq!(validate("/a//b"), Err("empty node name specified"));
        assert_eq!(validate("/a/./b"), Err("relative paths not allowed"));
        assert_eq!(validate("/a/.."), Err("relative paths not allowed"));
        assert_eq!(validate("/a\0b"), Err("null character not allowed"));
        assert_eq!(validate("/a\u{1}"), Err("invalid character"));
        assert_eq!(validate("/a\u{fff0}"), Err("invalid character"));
    }

    #[test]
    fn parents_and_names() {
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(name("/a/b"), "b");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(ancestors_inclusive("/a/b").collect::<Vec<_>>(), vec!["/a/b", "/a", "/"]);
        assert_eq!(ancestors_inclusive("/").collect::<Vec<_>>(), vec!["/"]);
    }
}
