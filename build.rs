//! Compiles our subset of Pulumi's RPC protocol (proto/) with tonic-build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc keeps the build independent of the machine's packages.
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    let include = protoc_bin_vendored::include_path()?;
    println!("cargo:rerun-if-changed=proto");
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(
            &[
                "proto/pulumi/provider.proto",
                "proto/pulumi/engine.proto",
                "proto/pulumi/plugin.proto",
            ],
            &[std::path::Path::new("proto"), include.as_path()],
        )?;
    Ok(())
}
