"""Writing specs: a starter plan (`catoptc init`), canonical formatting (`catoptc fmt`) and the
explanation of an error code (`catoptc explain`)."""
