"""Make the helpers of this folder importable (fake_remote)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
