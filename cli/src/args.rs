//! Command-line and command-line-of-the-shell parsing, the way zkCli does it.
//!
//! zkCli splits a line into words on white space, where a word that starts with a double
//! or single quote runs to the matching quote and loses both quotes (`create /a ""` passes
//! an empty string as the data). Flags are single-dash letters, bundled or not (`-s -e`,
//! `-se`), anywhere on the line; a flag that takes a value takes the next word (`-v 3`).

use std::fmt;

/// Default session timeout of zkCli (ms).
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// Default connect string of zkCli.
pub const DEFAULT_SERVER: &str = "localhost:2181";

/// Options that come before the command: `[-server host:port,…] [-timeout ms] [-r]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalOptions {
    pub server: String,
    pub timeout_ms: u64,
    pub readonly: bool,
    /// The command and its arguments; empty for the interactive shell.
    pub command: Vec<String>,
}

/// Bad input on the command line or in a shell line: printed, exit status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub const GLOBAL_USAGE: &str =
    "usage: warren cli [-server host:port[,host:port...]] [-timeout ms] [-r] [COMMAND ARGS...]";

/// Parses the arguments after `warren cli`. Global options stop at the first word that
/// is not one of them: the rest is the command, untouched.
pub fn parse_global(args: &[String]) -> Result<GlobalOptions, UsageError> {
    let mut opts = GlobalOptions {
        server: DEFAULT_SERVER.to_string(),
        timeout_ms: DEFAULT_TIMEOUT_MS,
        readonly: false,
        command: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let value = |i: usize| -> Result<&String, UsageError> {
            args.get(i + 1).ok_or_else(|| UsageError(format!("{} needs a value\n{GLOBAL_USAGE}", args[i])))
        };
        match args[i].as_str() {
            "-server" | "--server" => {
                opts.server = value(i)?.clone();
                i += 2;
            }
            "-timeout" | "--timeout" => {
                let v = value(i)?;
                opts.timeout_ms = match v.parse::<u64>() {
                    Ok(ms) if ms > 0 => ms,
                    _ => return Err(UsageError(format!("-timeout wants a positive number of ms, got {v:?}"))),
                };
                i += 2;
            }
            "-r" => {
                opts.readonly = true;
                i += 1;
            }
            // zkCli flags that change nothing here: the session is always established before
            // the first command runs, and there is no client properties file.
            "-waitforconnection" => i += 1,
            "-client-configuration" => {
                value(i)?;
                i += 2;
            }
            "-h" | "--help" | "-help" => return Err(UsageError(GLOBAL_USAGE.to_string())),
            _ => break,
        }
    }
    opts.command = args[i..].to_vec();
    Ok(opts)
}

/// Splits a shell line into words like zkCli: white space separates, and a word that
/// starts with `"` or `'` runs to the same quote (the quotes are dropped).
pub fn tokenize(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            let mut closed = false;
            for c in chars.by_ref() {
                if c == first {
                    closed = true;
                    break;
                }
                word.push(c);
            }
            if !closed {
                // zkCli's pattern does not match an unclosed quote: the quote stays.
                word.insert(0, first);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    words
}

/// What flags a command takes: a letter, and whether it takes a value.
pub struct FlagSpec {
    pub flags: &'static [(char, bool)],
    /// `--json` is accepted (read commands).
    pub json: bool,
}

/// A command's words after its flags were taken out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub flags: Vec<(char, Option<String>)>,
    pub positional: Vec<String>,
    pub json: bool,
}

impl Parsed {
    pub fn has(&self, c: char) -> bool {
        self.flags.iter().any(|(f, _)| *f == c)
    }

    pub fn value(&self, c: char) -> Option<&str> {
        self.flags.iter().rev().find(|(f, _)| *f == c).and_then(|(_, v)| v.as_deref())
    }
}

/// Separates flags from positional words. `usage` is the command's usage line, the error
/// text for any mistake (as zkCli prints it). A lone `-` and negative numbers are words.
pub fn parse_flags(words: &[String], spec: &FlagSpec, usage: &str) -> Result<Parsed, UsageError> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        if w == "--json" && spec.json {
            out.json = true;
            i += 1;
            continue;
        }
        if w == "--" {
            out.positional.extend(words[i + 1..].iter().cloned());
            break;
        }
        let is_flag = w.len() > 1 && w.starts_with('-') && !w[1..].starts_with(|c: char| c.is_ascii_digit());
        if !is_flag {
            out.positional.push(w.clone());
            i += 1;
            continue;
        }
        let letters: Vec<char> = w[1..].chars().collect();
        let mut j = 0;
        while j < letters.len() {
            let c = letters[j];
            let Some(&(_, takes_value)) = spec.flags.iter().find(|(f, _)| *f == c) else {
                return Err(UsageError(usage.to_string()));
            };
            if takes_value {
                let rest: String = letters[j + 1..].iter().collect();
                let v = if !rest.is_empty() {
                    rest
                } else {
                    i += 1;
                    words.get(i).cloned().ok_or_else(|| UsageError(usage.to_string()))?
                };
                out.flags.push((c, Some(v)));
                break;
            }
            out.flags.push((c, None));
            j += 1;
        }
        i += 1;
    }
    Ok(out)
}

/// ZooKeeper's path rules (PathUtils.validatePath), with zkCli's messages. A sequential
/// create may end in `/` (the server appends the number).
pub fn validate_path(path: &str, sequential: bool) -> Result<(), String> {
    if path.is_empty() {
        return Err("Path length must be > 0".into());
    }
    if !path.starts_with('/') {
        return Err("Path must start with / character".into());
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') && !sequential {
        return Err("Path must not end with / character".into());
    }
    let chars: Vec<char> = path.chars().collect();
    let mut last = '/';
    for (i, &c) in chars.iter().enumerate().skip(1) {
        if c == '\0' {
            return Err(format!("null character not allowed @{i}"));
        } else if c == '/' && last == '/' {
            return Err(format!("empty node name specified @{i}"));
        } else if c == '.' && last == '.' {
            let before = chars[i - 2];
            let after = chars.get(i + 1).copied();
            if before == '/' && (after.is_none() || after == Some('/')) {
                return Err(format!("relative paths not allowed @{i}"));
            }
        } else if c == '.' {
            let before = chars[i - 1];
            let after = chars.get(i + 1).copied();
            if before == '/' && (after.is_none() || after == Some('/')) {
                return Err(format!("relative paths not allowed @{i}"));
            }
        } else if matches!(c as u32, 0x01..=0x1f | 0x7f..=0x9f | 0xd800..=0xf8ff | 0xfff0..=0xffff) {
            return Err(format!("invalid character @{i}"));
        }
        last = c;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn global_options_stop_at_the_command() {
        let o = parse_global(&s(&["-server", "a:1,b:2", "-timeout", "5000", "-r", "get", "-s", "/x"])).unwrap();
        assert_eq!(o.server, "a:1,b:2");
        assert_eq!(o.timeout_ms, 5000);
        assert!(o.readonly);
        assert_eq!(o.command, s(&["get", "-s", "/x"]));
        let o = parse_global(&[]).unwrap();
        assert_eq!((o.server.as_str(), o.timeout_ms, o.command.len()), (DEFAULT_SERVER, DEFAULT_TIMEOUT_MS, 0));
        assert!(parse_global(&s(&["-server"])).is_err());
        assert!(parse_global(&s(&["-timeout", "x"])).is_err());
        assert!(parse_global(&s(&["-timeout", "0"])).is_err());
        // -waitforconnection is accepted and ignored
        assert_eq!(parse_global(&s(&["-waitforconnection", "ls", "/"])).unwrap().command, s(&["ls", "/"]));
    }

    #[test]
    fn tokenize_like_zkcli() {
        assert_eq!(tokenize(r#"create /a "" "#), s(&["create", "/a", ""]));
        assert_eq!(tokenize("  set /a 'hello world'  "), s(&["set", "/a", "hello world"]));
        assert_eq!(tokenize("ls\t-s   /"), s(&["ls", "-s", "/"]));
        assert_eq!(tokenize("set /a \"open"), s(&["set", "/a", "\"open"]));
        assert!(tokenize("   ").is_empty());
    }

    #[test]
    fn flags_anywhere_and_bundled() {
        let spec = FlagSpec { flags: &[('s', false), ('e', false), ('v', true)], json: true };
        let p = parse_flags(&s(&["-se", "/x", "-v", "3", "data", "--json"]), &spec, "u").unwrap();
        assert!(p.has('s') && p.has('e') && p.json);
        assert_eq!(p.value('v'), Some("3"));
        assert_eq!(p.positional, s(&["/x", "data"]));
        let p = parse_flags(&s(&["-v7", "/x"]), &spec, "u").unwrap();
        assert_eq!(p.value('v'), Some("7"));
        assert_eq!(parse_flags(&s(&["-q", "/x"]), &spec, "usage").unwrap_err(), UsageError("usage".into()));
        assert!(parse_flags(&s(&["/x", "-v"]), &spec, "u").is_err());
        // negative numbers and a lone dash are words
        let p = parse_flags(&s(&["/x", "-1", "-"]), &spec, "u").unwrap();
        assert_eq!(p.positional, s(&["/x", "-1", "-"]));
        let no_json = FlagSpec { flags: &[], json: false };
        assert!(parse_flags(&s(&["--json"]), &no_json, "u").is_err());
    }

    #[test]
    fn paths_like_zookeeper() {
        assert!(validate_path("/", false).is_ok());
        assert!(validate_path("/a/b.c/..d", false).is_ok());
        assert_eq!(validate_path("p", false).unwrap_err(), "Path must start with / character");
        assert_eq!(validate_path("/p/", false).unwrap_err(), "Path must not end with / character");
        assert!(validate_path("/p/", true).is_ok());
        assert_eq!(validate_path("", false).unwrap_err(), "Path length must be > 0");
        assert_eq!(validate_path("/a//b", false).unwrap_err(), "empty node name specified @3");
        assert_eq!(validate_path("/a/../b", false).unwrap_err(), "relative paths not allowed @4");
        assert_eq!(validate_path("/a/.", false).unwrap_err(), "relative paths not allowed @3");
        assert_eq!(validate_path("/a\u{1}", false).unwrap_err(), "invalid character @2");
    }
}
