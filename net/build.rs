//! Generates Rust types for etcd's protobuf packages (etcdserverpb, mvccpb, authpb, v3lockpb,
//! v3electionpb) from the .proto files under `proto/`, with protox (pure Rust) so no protoc is
//! needed; then serde `Serialize`/`Deserialize` for every message with pbjson-build, in the
//! protobuf JSON mapping the etcd JSON gateway speaks (see `json_gateway`).

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
    let descriptor_bytes = prost::Message::encode_to_vec(&descriptors);
    let mut config = prost_build::Config::new();
    // Keys, values and blobs stay `Vec<u8>`: the engine copies them out of its mmap anyway, and
    // `Bytes` would add a refcount per field for no gain on this path.
    config
        .compile_fds(descriptors)
        .expect("generate Rust for etcd .proto files");
    // etcd's gateway (grpc-gateway v1's default marshaler, `OrigName: true`) names fields as the
    // .proto does (`create_revision`, `ID`, `peerURLs`), leaves out fields at their default
    // value, and accepts unknown fields in requests; pbjson reads both naming styles.
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)
        .expect("register etcd descriptors for pbjson")
        .preserve_proto_field_names()
        .ignore_unknown_fields()
        .build(&[
            ".mvccpb",
            ".authpb",
            ".etcdserverpb",
            ".v3lockpb",
            ".v3electionpb",
        ])
        .expect("generate serde for etcd .proto files");
}
