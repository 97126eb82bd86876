#!/path/to/your/venv/bin/python
from tether.compat import main

main()
