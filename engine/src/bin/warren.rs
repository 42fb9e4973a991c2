fn main() {
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(1 << 20)
        .make()
        .unwrap();
    ex.run(async { println!("glommio ok") });
}
