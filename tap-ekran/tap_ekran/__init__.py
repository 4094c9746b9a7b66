"""tap-ekran: Ekran System sessions as a Singer stream."""
