"""execlave: OpenTelemetry-native governance for AutoGen agents.

    from execlave import Execlave
    from execlave.errors import PolicyBlockedError
    from execlave.integrations.autogen import instrument_autogen_agent
"""

from ._version import __version__
from .client import Execlave

__all__ = ["Execlave", "__version__"]
