"""Static scans of model files for what they would run or read when loaded: pickles (raw, torch.save, joblib,
object-dtype .npy), zip archives (with their header tricks), TorchScript code, ONNX external data, safetensors
headers. Nothing here ever unpickles, imports or loads what it scans.

May import: errors only (it sits just above results: `modelcompat.model` scans every file before reading it).
"""
from modelcompat.scanning.scan import scan_file, scan_paths
from modelcompat.scanning.verdicts import FileScan, Threat, Verdict

__all__ = ["FileScan", "Threat", "Verdict", "scan_file", "scan_paths"]
