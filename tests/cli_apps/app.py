from tether import Tether

app = Tether("default_app")
