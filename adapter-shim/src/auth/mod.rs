//! Delegated authentication and authorization, as the kube-aggregator expects (issue 6).
