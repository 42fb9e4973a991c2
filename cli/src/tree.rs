//! Subtree walks: `ls -R`, `deleteall`, `setAcl -R`, and Warren's `tree` and `du`.
//! Fetching talks to the server; rendering is pure and unit-tested.

use zookeeper_client::{Client, Error as ZkError};

use crate::args::{validate_path, Parsed};
use crate::commands::Command;
use crate::error::{CliError, CliResult};
use crate::session::out;

/// Most nodes one walk visits: a walk of a huge tree stops with an error instead of
/// eating the operator's memory.
pub const MAX_WALK_NODES: usize = 2_000_000;

pub fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

fn too_big(path: &str) -> CliError {
    CliError::msg(format!("{path}: more than {MAX_WALK_NODES} nodes, stopped"))
}

/// Every path of the subtree, breadth first, children sorted (zkCli's `ls -R` order).
pub async fn list_bfs(client: &Client, root: &str) -> CliResult<Vec<String>> {
    let mut out = vec![root.to_string()];
    let mut i = 0;
    while i < out.len() {
        let path = out[i].clone();
        match client.list_children(&path).await {
            Ok(mut children) => {
                children.sort();
                if out.len() + children.len() > MAX_WALK_NODES {
                    return Err(too_big(root));
                }
                out.extend(children.iter().map(|c| child_path(&path, c)));
            }
            // A node deleted under us is simply gone; the root must exist.
            Err(ZkError::NoNode) if i > 0 => {}
            Err(e) => return Err(CliError::zk(e, &path)),
        }
        i += 1;
    }
    Ok(out)
}

/// `deleteall`: deepest first, ignoring nodes someone else deleted meanwhile.
pub async fn delete_all(client: &Client, root: &str) -> CliResult {
    let all = list_bfs(client, root).await?;
    for path in all.iter().rev() {
        match client.delete(path, None).await {
            Ok(()) | Err(ZkError::NoNode) => {}
            Err(e) => return Err(CliError::zk(e, path)),
        }
    }
    Ok(())
}

/// A node as `tree` and `du` see it. `children` may hold fewer than `num_children`
/// (cut by a limit); the renderer says how many were left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub data_len: u64,
    pub num_children: u64,
    pub children: Vec<Node>,
}

/// Limits of a fetch: depth below the root, children listed per node.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub depth: usize,
    pub children: usize,
}

/// Reads the subtree at `root` within `limits` (one getChildren2 per node shown).
pub async fn fetch(client: &Client, root: &str, limits: Limits) -> CliResult<Node> {
    let mut budget = MAX_WALK_NODES;
    fetch_node(client, root, root.to_string(), 0, limits, &mut budget).await
}

async fn fetch_node(
    client: &Client,
    path: &str,
    name: String,
    depth: usize,
    limits: Limits,
    budget: &mut usize,
) -> CliResult<Node> {
    let (mut names, stat) = client.get_children(path).await.map_err(|e| CliError::zk(e, path))?;
    *budget = budget.checked_sub(1).ok_or_else(|| too_big(path))?;
    names.sort();
    let mut node =
        Node { name, data_len: stat.data_length.max(0) as u64, num_children: names.len() as u64, children: Vec::new() };
    if depth < limits.depth {
        for child in names.into_iter().take(limits.children) {
            let cp = child_path(path, &child);
            match Box::pin(fetch_node(client, &cp, child, depth + 1, limits, budget)).await {
                Ok(n) => node.children.push(n),
                Err(CliError::Zk { err: ZkError::NoNode, .. }) => node.num_children -= 1,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(node)
}

/// Draws a subtree with `├── `, `└── ` and `│   `. A node whose children were not
/// fetched (depth limit) shows `(N children)`; a list cut short ends in `… N more`.
pub fn render_tree(root: &Node) -> String {
    let mut s = root.name.clone();
    s.push_str(&count_suffix(root));
    s.push('\n');
    render_children(root, "", &mut s);
    s
}

fn count_suffix(n: &Node) -> String {
    match (n.children.is_empty(), n.num_children) {
        (true, 1) => " (1 child)".to_string(),
        (true, k) if k > 1 => format!(" ({k} children)"),
        _ => String::new(),
    }
}

fn render_children(node: &Node, prefix: &str, s: &mut String) {
    let more = node.num_children.saturating_sub(node.children.len() as u64);
    let shown = node.children.len();
    if shown == 0 {
        return;
    }
    for (i, child) in node.children.iter().enumerate() {
        let last = i + 1 == shown && more == 0;
        s.push_str(prefix);
        s.push_str(if last { "└── " } else { "├── " });
        s.push_str(&child.name);
        s.push_str(&count_suffix(child));
        s.push('\n');
        let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
        render_children(child, &deeper, s);
    }
    if more > 0 {
        s.push_str(prefix);
        s.push_str(&format!("└── … {more} more\n"));
    }
}

/// One row of `du`: a subtree's path, its bytes (data lengths summed) and node count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub path: String,
    pub bytes: u64,
    pub nodes: u64,
}

/// Every subtree of `root` (the root first), with its totals.
pub fn usages(root: &Node, root_path: &str) -> Vec<Usage> {
    let mut out = Vec::new();
    sum(root, root_path, &mut out);
    out.reverse();
    out
}

fn sum(node: &Node, path: &str, out: &mut Vec<Usage>) -> (u64, u64) {
    let (mut bytes, mut nodes) = (node.data_len, 1u64);
    for c in node.children.iter().rev() {
        let (b, n) = sum(c, &child_path(path, &c.name), out);
        bytes += b;
        nodes += n;
    }
    out.push(Usage { path: path.to_string(), bytes, nodes });
    (bytes, nodes)
}

/// `du`: the total, then the `top` largest subtrees below the root by bytes and by nodes.
pub fn render_du(all: &[Usage], top: usize) -> String {
    let Some(root) = all.first() else { return String::new() };
    let mut s = format!("{}: {} bytes in {} nodes\n", root.path, root.bytes, root.nodes);
    let mut rest: Vec<&Usage> = all[1..].iter().collect();
    rest.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.path.cmp(&b.path)));
    s.push_str("largest subtrees by bytes:\n");
    s.push_str(&format!("{:>12} {:>10}  {}\n", "BYTES", "NODES", "PATH"));
    for u in rest.iter().take(top) {
        s.push_str(&format!("{:>12} {:>10}  {}\n", u.bytes, u.nodes, u.path));
    }
    rest.sort_by(|a, b| b.nodes.cmp(&a.nodes).then(a.path.cmp(&b.path)));
    s.push_str("largest subtrees by node count:\n");
    s.push_str(&format!("{:>10} {:>12}  {}\n", "NODES", "BYTES", "PATH"));
    for u in rest.iter().take(top) {
        s.push_str(&format!("{:>10} {:>12}  {}\n", u.nodes, u.bytes, u.path));
    }
    s
}

fn number(c: &Command, p: &Parsed, flag: char, default: usize) -> CliResult<usize> {
    match p.value(flag) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| CliError::Usage(c.usage.to_string())),
    }
}

fn one_path<'a>(c: &Command, p: &'a Parsed) -> CliResult<&'a str> {
    match p.positional.as_slice() {
        [path] => {
            validate_path(path, false).map_err(CliError::msg)?;
            Ok(path)
        }
        _ => Err(CliError::Usage(c.usage.to_string())),
    }
}

pub async fn tree_command(client: &Client, c: &Command, p: &Parsed) -> CliResult {
    let path = one_path(c, p)?;
    let limits = Limits { depth: number(c, p, 'd', 4)?, children: number(c, p, 'n', 25)? };
    let root = fetch(client, path, limits).await?;
    out(&render_tree(&root));
    Ok(())
}

pub async fn du_command(client: &Client, c: &Command, p: &Parsed) -> CliResult {
    let path = one_path(c, p)?;
    let top = number(c, p, 'n', 10)?;
    let root = fetch(client, path, Limits { depth: usize::MAX, children: usize::MAX }).await?;
    out(&render_du(&usages(&root, path), top));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(name: &str, len: u64) -> Node {
        Node { name: name.into(), data_len: len, num_children: 0, children: vec![] }
    }

    fn sample() -> Node {
        Node {
            name: "/app".into(),
            data_len: 1,
            num_children: 3,
            children: vec![
                Node { name: "a".into(), data_len: 10, num_children: 2, children: vec![leaf("x", 100), leaf("y", 5)] },
                Node { name: "b".into(), data_len: 0, num_children: 7, children: vec![] },
                leaf("c", 3),
            ],
        }
    }

    #[test]
    fn tree_drawing() {
        assert_eq!(render_tree(&sample()), "/app\n├── a\n│   ├── x\n│   └── y\n├── b (7 children)\n└── c\n");
        let mut cut = sample();
        cut.num_children = 5; // two children not listed (size limit)
        assert_eq!(render_tree(&cut), "/app\n├── a\n│   ├── x\n│   └── y\n├── b (7 children)\n├── c\n└── … 2 more\n");
        let one = Node { name: "/".into(), data_len: 0, num_children: 1, children: vec![] };
        assert_eq!(render_tree(&one), "/ (1 child)\n");
    }

    #[test]
    fn du_sums_and_ranks() {
        let u = usages(&sample(), "/app");
        assert_eq!(u[0], Usage { path: "/app".into(), bytes: 119, nodes: 6 });
        let a = u.iter().find(|x| x.path == "/app/a").unwrap();
        assert_eq!((a.bytes, a.nodes), (115, 3));
        let text = render_du(&u, 2);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "/app: 119 bytes in 6 nodes");
        assert!(lines[3].ends_with("/app/a") && lines[3].contains("115"), "{text}");
        assert!(lines[4].ends_with("/app/a/x"), "{text}");
        assert_eq!(lines[5], "largest subtrees by node count:");
        assert!(lines[7].ends_with("/app/a"), "{text}");
        assert_eq!(lines.len(), 9);
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(child_path("/a", "b"), "/a/b");
    }
}
