#[path = "sim/lin.rs"]
mod lin;
