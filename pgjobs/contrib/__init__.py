"""Integrations with other frameworks: `pgjobs.contrib.django` (a `django.tasks` backend).

Each subpackage needs its framework installed (`pip install 'pgjobs[django]'`);
importing pgjobs never imports one.
"""
