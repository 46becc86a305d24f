//! A session for calibration: intermediate tensors out, whole.

use headstart_models::preprocess::Preprocess;
use ort::session::Session;

use crate::session::{builder_err, check_input, run_outputs};
use crate::{Runtime, RuntimeError};

/// A CPU session that hands back whole intermediate tensors (any rank), to
/// calibrate int8 quantisation: open it on a model whose graph outputs include
/// them (`headstart_onnx::quantize::with_outputs`).
pub struct Probe {
    session: Session,
    name: String,
    pre: Preprocess,
    outputs: Vec<String>,
    fixed_batch: Option<usize>,
}

impl Probe {
    /// Opens `onnx` (bytes) on CPU with `threads` intra-op threads.
    pub fn open(
        rt: &Runtime,
        name: &str,
        onnx: &[u8],
        pre: Preprocess,
        outputs: Vec<String>,
        threads: usize,
    ) -> Result<Probe, RuntimeError> {
        let ctx = format!("opening {name} for calibration");
        let session = Session::builder(&rt.env)
            .map_err(RuntimeError::ort(&ctx))?
            .with_intra_threads(threads.max(1))
            .map_err(builder_err(&ctx))?
            .commit_from_memory(onnx)
            .map_err(RuntimeError::ort(&ctx))?;
        let fixed_batch = check_input(name, &session, &pre)?;
        Ok(Probe {
            session,
            name: name.to_string(),
            pre,
            outputs,
            fixed_batch,
        })
    }

    /// The batch size the model fixes, if any (then [`Probe::run`] takes exactly that).
    pub fn fixed_batch(&self) -> Option<usize> {
        self.fixed_batch
    }

    /// Runs `n` tensors and calls `each(output name, values)` for every output.
    pub fn run(
        &mut self,
        batch: &[f32],
        n: usize,
        each: &mut dyn FnMut(&str, &[f32]),
    ) -> Result<(), RuntimeError> {
        run_outputs(
            &mut self.session,
            &self.pre,
            &self.name,
            &self.outputs,
            batch,
            n,
            &mut |name, _, data| {
                each(name, data);
                Ok(())
            },
        )
    }
}
