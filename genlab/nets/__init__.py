"""Plain nn.Modules (no Lightning): classifiers, generators, discriminators, UNets."""
