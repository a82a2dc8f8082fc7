//! Generates Rust types for etcd's protobuf packages (etcdserverpb, mvccpb, authpb, v3lockpb,
//! v3electionpb) from the .proto files under `proto/`, with protox (pure Rust) so no protoc is
//! needed.

fn main() {
    let files = [
        "proto/rpc.proto",
        "proto/kv.proto",
        "proto/auth.proto",
        "proto/v3lock.proto",
        "proto/v3election.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"]).expect("compile etcd .proto files");
    let mut config = prost_build::Config::new();
    // Keys, values and blobs stay `Vec<u8>`: the engine copies them out of its mmap anyway, and
    // `Bytes` would add a refcount per field for no gain on this path.
    config
        .compile_fds(descriptors)
        .expect("generate Rust for etcd .proto files");
}
