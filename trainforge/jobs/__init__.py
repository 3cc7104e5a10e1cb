"""Jobs: the state machine, leases, queries and the service operations the API and worker share."""
