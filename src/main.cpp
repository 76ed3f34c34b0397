#include "app/app.hpp"

int main(int argc, char** argv) { return dg::app::run(argc, argv); }
