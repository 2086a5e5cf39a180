"""Pure renderers: file contents computed from the configuration, no side effects."""
