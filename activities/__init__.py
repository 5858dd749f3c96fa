"""Every side effect. One module per action family; the registry discovers them all."""
