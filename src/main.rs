//! `basalt`: the etcd-compatible server binary. The server lands with its own issue; until then
//! this binary says so instead of pretending to serve.

fn main() {
    eprintln!("basalt: the server is not built yet (see the single-member server issue)");
    std::process::exit(2);
}
