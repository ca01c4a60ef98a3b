"""A tasks module that fails to import, as one with a bug at module level would."""

raise RuntimeError("broken_tasks cannot be imported")
