"""Software Management Callbacks V2: models and controller."""

from . import models
from .controller import SoftwareManagementCallbacksV2Controller
from .models import *

__all__ = ["SoftwareManagementCallbacksV2Controller"]
__all__ += models.__all__
