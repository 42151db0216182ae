"""The HTTP contract's shapes, as marshmallow schemas: they validate requests and the
OpenAPI document is generated from them, so the two cannot disagree."""
