"""Software Management Callbacks V3: models and controller."""

from . import models
from .controller import SoftwareManagementCallbacksV3Controller
from .models import *

__all__ = ["SoftwareManagementCallbacksV3Controller"]
__all__ += models.__all__
