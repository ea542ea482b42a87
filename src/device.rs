//! Where a trial computes: the device names of `[budget] devices` and `KILN_DEVICE`, the GPUs
//! this machine has, and burn's device for a backend and a name.
//!
//! A name is `cuda:N` (the Nth CUDA device), `wgpu` (the adapter wgpu ranks first), `wgpu:N`
//! (the Nth discrete GPU wgpu lists), `wgpu:integrated:N`, `wgpu:virtual:N` or `wgpu:cpu` (a
//! software adapter, such as Mesa's lavapipe). Command scripts and your own objectives may use
//! names of their own; the built-in trainer takes only these.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use burn::tensor::Device;

crate::named! {
    /// burn backends (`[train] backend`).
    pub enum Backend {
        /// burn's flex backend (the CPU).
        Flex = "flex",
        /// The ndarray backend (the CPU; with the `ndarray` cargo feature).
        Ndarray = "ndarray",
        /// burn's wgpu backend: Vulkan, Metal or DirectX 12 (with the `wgpu` cargo feature).
        Wgpu = "wgpu",
        /// burn's CUDA backend (with the `cuda` cargo feature).
        Cuda = "cuda",
    }
}

impl Backend {
    /// Whether the backend trains on a GPU (so its tensors live in the device's memory).
    pub fn on_gpu(self) -> bool {
        matches!(self, Backend::Wgpu | Backend::Cuda)
    }
}

/// A device the built-in trainer can train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceName {
    /// A CUDA device by index (the `cuda` backend).
    Cuda(usize),
    /// A wgpu adapter (the `wgpu` backend).
    Wgpu(Adapter),
}

/// Which wgpu adapter, in wgpu's own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    /// The adapter wgpu ranks first (a high-power GPU before others).
    Best,
    /// The Nth discrete GPU.
    Discrete(usize),
    /// The Nth integrated GPU.
    Integrated(usize),
    /// The Nth virtual GPU.
    Virtual(usize),
    /// A software adapter on the CPU.
    Cpu,
}

/// Why a device cannot be had, or cannot compute.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeviceError {
    /// Text that names no device the built-in trainer knows.
    #[error("`{0}` is not a device name; the trainer takes {ALLOWED}")]
    NotADevice(String),
    /// The backend's cargo feature was left out of this build.
    #[error("this kiln was built without the `{0}` feature (cargo build --release --features {0})")]
    NotBuilt(Backend),
    /// A device of one backend given to a trial of another.
    #[error("device `{name}` belongs to the `{}` backend, not `{backend}`", name.backend())]
    OtherBackend {
        /// The device.
        name: DeviceName,
        /// The trial's backend.
        backend: Backend,
    },
    /// The runtime gave up on the device (no driver, no such adapter): its panic's message.
    #[error("{0}")]
    Unreachable(String),
    /// The device computed, but wrongly.
    #[error("computed 1 + 2 = {0}")]
    Miscomputed(f32),
}

/// The names the built-in trainer takes, for error messages.
pub const ALLOWED: &str =
    "`cuda:N`, `wgpu`, `wgpu:N`, `wgpu:integrated:N`, `wgpu:virtual:N` or `wgpu:cpu`";

impl FromStr for DeviceName {
    type Err = DeviceError;

    fn from_str(text: &str) -> Result<DeviceName, DeviceError> {
        let index = |n: &str| n.parse::<usize>().ok();
        let parts: Vec<&str> = text.split(':').collect();
        let name = match parts.as_slice() {
            ["cuda", n] => index(n).map(DeviceName::Cuda),
            ["wgpu"] => Some(DeviceName::Wgpu(Adapter::Best)),
            ["wgpu", "cpu"] => Some(DeviceName::Wgpu(Adapter::Cpu)),
            ["wgpu", n] => index(n).map(|n| DeviceName::Wgpu(Adapter::Discrete(n))),
            ["wgpu", "integrated", n] => index(n).map(|n| DeviceName::Wgpu(Adapter::Integrated(n))),
            ["wgpu", "virtual", n] => index(n).map(|n| DeviceName::Wgpu(Adapter::Virtual(n))),
            _ => None,
        };
        name.ok_or_else(|| DeviceError::NotADevice(text.to_string()))
    }
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceName::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceName::Wgpu(Adapter::Best) => f.write_str("wgpu"),
            DeviceName::Wgpu(Adapter::Discrete(n)) => write!(f, "wgpu:{n}"),
            DeviceName::Wgpu(Adapter::Integrated(n)) => write!(f, "wgpu:integrated:{n}"),
            DeviceName::Wgpu(Adapter::Virtual(n)) => write!(f, "wgpu:virtual:{n}"),
            DeviceName::Wgpu(Adapter::Cpu) => f.write_str("wgpu:cpu"),
        }
    }
}

impl DeviceName {
    /// burn's device of this name (`cuda:N` needs kiln's `cuda` feature, `wgpu...` its `wgpu`
    /// feature): for your own objective, `trial.device()` parsed and turned into a device.
    pub fn device(self) -> Result<Device, DeviceError> {
        burn_device(self.backend(), Some(self))
    }

    /// The backend that trains on this device.
    pub(crate) fn backend(&self) -> Backend {
        match self {
            DeviceName::Cuda(_) => Backend::Cuda,
            DeviceName::Wgpu(_) => Backend::Wgpu,
        }
    }

    /// The Nth GPU of `backend`, as `devices = "all"` names it.
    pub(crate) fn nth(backend: Backend, n: usize) -> DeviceName {
        match backend {
            Backend::Wgpu => DeviceName::Wgpu(Adapter::Discrete(n)),
            _ => DeviceName::Cuda(n),
        }
    }
}

/// Whether this kiln was built with `backend`'s cargo feature.
pub(crate) fn built_with(backend: Backend) -> bool {
    match backend {
        Backend::Flex => true,
        Backend::Ndarray => cfg!(feature = "ndarray"),
        Backend::Wgpu => cfg!(feature = "wgpu"),
        Backend::Cuda => cfg!(feature = "cuda"),
    }
}

/// burn's device for `backend`: `name` where the trial was given one, else the backend's
/// first (the CPU for flex and ndarray).
pub(crate) fn burn_device(
    backend: Backend,
    name: Option<DeviceName>,
) -> Result<Device, DeviceError> {
    if !built_with(backend) {
        return Err(DeviceError::NotBuilt(backend));
    }
    if let Some(name) = name.filter(|n| n.backend() != backend) {
        return Err(DeviceError::OtherBackend { name, backend });
    }
    Ok(match backend {
        Backend::Flex => Device::flex(),
        #[cfg(feature = "ndarray")]
        Backend::Ndarray => {
            #[allow(deprecated)]
            let device = Device::ndarray();
            device
        }
        #[cfg(feature = "cuda")]
        Backend::Cuda => match name {
            Some(DeviceName::Cuda(n)) => Device::cuda(n),
            _ => Device::cuda(0),
        },
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => Device::wgpu(wgpu_kind(match name {
            Some(DeviceName::Wgpu(adapter)) => adapter,
            _ => Adapter::Best,
        })),
        #[allow(unreachable_patterns)]
        _ => unreachable!("built_with checked the feature"),
    })
}

#[cfg(feature = "wgpu")]
fn wgpu_kind(adapter: Adapter) -> burn::tensor::DeviceKind {
    use burn::tensor::DeviceKind;
    match adapter {
        Adapter::Best => DeviceKind::DefaultDevice,
        Adapter::Discrete(n) => DeviceKind::DiscreteGpu(n),
        Adapter::Integrated(n) => DeviceKind::IntegratedGpu(n),
        Adapter::Virtual(n) => DeviceKind::VirtualGpu(n),
        Adapter::Cpu => DeviceKind::Cpu,
    }
}

/// Computes on burn's device for `backend` and `name` (a sum, read back): `Err` with why
/// when the device cannot be reached (no driver, no such adapter).
pub(crate) fn probe(backend: Backend, name: Option<DeviceName>) -> Result<(), DeviceError> {
    use burn::tensor::{Tensor, TensorData};
    let device = burn_device(backend, name)?;
    // A missing device panics deep in the runtime; the panic's message is the answer.
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let sum = std::panic::catch_unwind(move || {
        let x = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0], [2]), &device);
        x.sum().into_scalar::<f32>()
    });
    std::panic::set_hook(quiet);
    match sum {
        Ok(3.0) => Ok(()),
        Ok(other) => Err(DeviceError::Miscomputed(other)),
        Err(panic) => Err(DeviceError::Unreachable(panic_message(panic.as_ref()))),
    }
}

/// The text of a panic's payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// The NVIDIA GPUs the driver lists (`/proc/driver/nvidia/gpus`), by their model names, in
/// PCI order; empty where there is no NVIDIA driver. CUDA numbers the same GPUs fastest first
/// unless `CUDA_DEVICE_ORDER=PCI_BUS_ID`, so the count is what `devices = "all"` relies on.
pub fn nvidia_gpus() -> Vec<String> {
    nvidia_gpus_in(Path::new("/proc/driver/nvidia/gpus"))
}

fn nvidia_gpus_in(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut buses: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    buses.sort();
    buses
        .iter()
        .map(|bus| {
            let information = std::fs::read_to_string(bus.join("information")).unwrap_or_default();
            information
                .lines()
                .find_map(|l| l.strip_prefix("Model:"))
                .map_or_else(|| "NVIDIA GPU".to_string(), |m| m.trim().to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_as_written() {
        for text in [
            "cuda:0",
            "cuda:7",
            "wgpu",
            "wgpu:1",
            "wgpu:integrated:0",
            "wgpu:virtual:2",
            "wgpu:cpu",
        ] {
            let name: DeviceName = text.parse().unwrap();
            assert_eq!(name.to_string(), text);
        }
    }

    #[test]
    fn other_names_are_refused_with_the_allowed_ones() {
        for text in [
            "cuda",
            "cuda:x",
            "gpu:0",
            "wgpu:integrated",
            "cuda:0:1",
            "",
            "cpu",
        ] {
            let error = text.parse::<DeviceName>().unwrap_err().to_string();
            assert!(error.contains(ALLOWED), "{text}: {error}");
        }
    }

    #[test]
    fn the_cpu_backends_pass_the_probe() {
        assert_eq!(probe(Backend::Flex, None), Ok(()));
    }

    #[test]
    fn a_device_of_another_backend_is_refused() {
        let error = burn_device(Backend::Flex, Some(DeviceName::Cuda(0)))
            .unwrap_err()
            .to_string();
        assert!(error.contains("`cuda` backend"), "{error}");
    }

    #[test]
    fn the_driver_list_gives_each_gpu_its_model() {
        let root = tempfile::tempdir().unwrap();
        for (bus, model) in [
            ("0000:41:00.0", "NVIDIA H200"),
            ("0000:01:00.0", "NVIDIA A100"),
        ] {
            let dir = root.path().join(bus);
            std::fs::create_dir(&dir).unwrap();
            let info = format!("Model: \t\t {model}\nIRQ:   123\n");
            std::fs::write(dir.join("information"), info).unwrap();
        }
        assert_eq!(
            nvidia_gpus_in(root.path()),
            vec!["NVIDIA A100".to_string(), "NVIDIA H200".to_string()]
        );
        assert!(nvidia_gpus_in(&root.path().join("absent")).is_empty());
    }
}
