"""The storage node: follows the producer's headers, verifies each before anything else, fetches
and verifies every cell, stores each block's rows a window at a time and makes the block
visible in one synced seal, serves headers, cells and blobs, attests, and
reconstructs from peers when whole rows are nowhere to be had. Imported only by the CLI and
tests."""
