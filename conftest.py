# The services run on eventlet, in tests as in production; patch before anything imports
# socket or threading (this is what `nameko test` would do).
import eventlet

eventlet.monkey_patch()
