"""Word lists the generators draw from. Written for this project (no third-party data, same licence as
the code), so the suites need nothing downloaded and every run from a seed is identical."""

NOUNS = (
    "river", "garden", "engine", "lantern", "harbor", "meadow", "circuit", "library", "compass", "orchard",
    "bridge", "canyon", "violin", "market", "signal", "glacier", "workshop", "beacon", "tunnel", "forest",
    "ledger", "kettle", "tower", "island", "mirror", "quarry", "ribbon", "saddle", "timber", "village",
    "anchor", "barrel", "candle", "desert", "falcon", "gravel", "hammer", "iceberg", "jacket", "kernel",
)
ADJECTIVES = (
    "quiet", "amber", "rapid", "hollow", "silver", "patient", "crooked", "gentle", "distant", "vivid",
    "humble", "brisk", "golden", "narrow", "ancient", "restless", "sturdy", "pale", "bright", "curious",
)
VERBS = (
    "follows", "reflects", "carries", "measures", "shelters", "echoes", "outlasts", "guards", "crosses",
    "borrows", "mends", "gathers", "watches", "trims", "paints", "counts", "circles", "lifts", "warms",
)
PLACES = (
    "Lisbon", "Nairobi", "Oslo", "Quito", "Hanoi", "Perth", "Tbilisi", "Dakar", "Montreal", "Kyoto",
    "Valparaiso", "Reykjavik", "Marrakesh", "Tallinn", "Cusco", "Zanzibar", "Bergen", "Gdansk",
)
PEOPLE = (
    "Ada Lovelace", "Alan Turing", "Grace Hopper", "Marie Curie", "Nikola Tesla", "Rosalind Franklin",
    "Emmy Noether", "Srinivasa Ramanujan", "Hedy Lamarr", "Katherine Johnson", "Claude Shannon",
)
ACRONYMS = ("NASA", "UNESCO", "RADAR", "LASER", "SCUBA", "HTTP", "DNA", "GPS", "UNICEF", "OPEC", "CPU", "ASAP")
ANIMALS = ("otter", "heron", "lynx", "tortoise", "octopus", "pangolin", "falcon", "beaver", "gecko", "ibis")
THINGS = (
    "printing press", "telescope", "steam engine", "compass", "vaccine", "bicycle", "telephone", "zipper",
    "radio", "calculator", "microscope", "sewing machine", "barometer", "parachute",
)
TOPICS = ("rainbows", "tides", "inflation", "photosynthesis", "echoes", "rust", "static electricity",
          "jet lag", "erosion", "hiccups", "auroras", "fermentation")
