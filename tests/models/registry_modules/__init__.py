"""Process modules the registry's tests name in `build_registry`: each is wrong in one way."""
