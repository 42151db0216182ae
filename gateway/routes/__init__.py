"""The gateway's endpoints, one mixin class per area of the contract."""
