"""The screens, one module per family; shared HTTP helpers in http."""
