"""The worker side: the function RQ runs, hosted polling and the model runtime. It may import
torch; it never holds the Hub write token and needs no shared disk with the app."""
