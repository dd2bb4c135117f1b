"""Software Management Callbacks V1: models and controller."""

from . import models
from .controller import SoftwareManagementCallbacksV1Controller
from .models import *

__all__ = ["SoftwareManagementCallbacksV1Controller"]
__all__ += models.__all__
