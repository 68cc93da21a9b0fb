print("tensorlib profiler demo: coming with the training stack")
