# The services run on eventlet, in tests as in production; patch before anything imports
# socket or threading (this is what `nameko test` would do).
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # eventlet announces its own deprecation on import
    import eventlet

eventlet.monkey_patch()
