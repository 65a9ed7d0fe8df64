"""Small pieces the apps share: money, admin building blocks, request limits, periodic-task
sync, URL converters, parsers, throttles and error views. Nothing app-specific."""
