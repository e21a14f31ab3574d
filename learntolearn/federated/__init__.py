"""Federated meta-learning on Flower: clients from real data, the library's local computations as client
apps, FedAvg's aggregation on the server, personalised evaluation of clients that never trained."""
