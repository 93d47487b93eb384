"""Permuted-block, stratified, seeded randomization with a concealed list."""
